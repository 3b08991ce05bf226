import Foundation
import Glibc
import Kill
import Namespaces
import SockDiag
import SocketFilter
import TestSupport
import Testing

/// The library API a daemon calls: select by filter or by cookies in a namespace the test creates,
/// with each backend; exactly the chosen sockets die (owner ECONNABORTED, TCP peer ECONNRESET),
/// the rest still move data.
@Suite struct SocketKillerTests {
    static let backends: [KillBackend] = [.netlink, .bpf]

    @Test(arguments: backends) func killsByFilter(backend: KillBackend) throws {
        let ns = try TestNetns("filter")
        defer { ns.remove() }
        let net = try NamespaceResolver().resolve(ns.name)
        let s = try NamespaceRunner.run(in: net) { try Sockets.make() }
        defer { s.close() }
        let killer = SocketKiller()
        func request(_ f: String, dryRun: Bool = false, max: Int? = nil) throws -> KillRequest {
            var r = try KillRequest(filter: f, protocols: [.tcp, .udp], namespaces: .list([net]), dryRun: dryRun, max: max)
            r.backend = backend
            return r
        }

        // Refusals and a dry run touch nothing.
        #expect(throws: KillError.emptyFilter) { try killer.kill(request("")) }
        #expect(throws: KillError.tooManyMatches(count: 4, max: 3)) { try killer.kill(request("dport = :7201", max: 3)) }
        let dry = try killer.kill(request("dport = :7201", dryRun: true))
        #expect(dry.summary.backend == backend.rawValue)
        #expect(dry.results.map(\.outcome) == Array(repeating: .wouldDestroy, count: 4))
        #expect(s.allTargetsAlive())

        var streamed: [KillResult] = []
        let summary = try killer.kill(request("dport = :7201")) { streamed.append($0) }
        #expect(summary.backend == backend.rawValue)
        #expect(Set(streamed.map(\.socket.cookie)) == Set(s.targets.map { Sock.cookie($0.owner) }))
        #expect(streamed.allSatisfy { $0.outcome == .destroyed && $0.netns == ns.name })
        #expect(streamed.allSatisfy { ["127.0.0.1", "::1"].contains($0.socket.destination?.description ?? "-") && $0.socket.destinationPort == 7201 })
        #expect(streamed.allSatisfy { $0.socket.source == $0.socket.destination })
        #expect(summary.namespaces.count == 1 && summary.namespaces[0].destroyed == 4 && summary.namespaces[0].netns == ns.name)
        for t in s.targets {
            #expect(Sock.recvErrno(t.owner) == ECONNABORTED, "\(t.name) owner")
            if let peer = t.tcpPeer { #expect(Sock.recvErrno(peer) == ECONNRESET, "\(t.name) peer") }
        }
        #expect(s.othersAlive())
    }

    /// An IPv4 filter means IPv4-mapped IPv6 sockets too: the accepted end of a dual-stack listener.
    @Test(arguments: backends) func ipv4FilterKillsMappedSockets(backend: KillBackend) throws {
        let ns = try TestNetns("mapped")
        defer { ns.remove() }
        let net = try NamespaceResolver().resolve(ns.name)
        let s = try NamespaceRunner.run(in: net) { try Sockets.make() }
        defer { s.close() }
        var req = try KillRequest(filter: "dst 10.77.0.1 and sport = :7203", protocols: [.tcp], namespaces: .list([net]))
        req.backend = backend
        let report = try SocketKiller().kill(req)
        #expect(report.summary.backend == backend.rawValue)
        #expect(report.results.map(\.socket.cookie) == [Sock.cookie(s.mapped.server)])
        #expect(report.results.first?.socket.family == UInt8(AF_INET6))
        #expect(report.results.map(\.outcome) == [.destroyed])
        #expect(Sock.recvErrno(s.mapped.server) == ECONNABORTED)
        #expect(Sock.recvErrno(s.mapped.client) == ECONNRESET)
        #expect(s.allTargetsAlive() && s.othersAlive(includingMapped: false))
    }

    @Test(arguments: backends) func killsByCookieFromAsyncCode(backend: KillBackend) async throws {
        let ns = try TestNetns("cookie")
        defer { ns.remove() }
        let net = try NamespaceResolver().resolve(ns.name)
        let s = try await NamespaceRunner.run(in: net) { try Sockets.make() }
        defer { s.close() }
        let victim = Sock.cookie(s.other.server)
        var req = KillRequest(cookies: [victim], namespaces: .list([net]))
        req.backend = backend
        let report = try await SocketKiller().kill(req)
        #expect(report.summary.backend == backend.rawValue)
        #expect(report.results.map(\.socket.cookie) == [victim])
        #expect(report.results.map(\.outcome) == [.destroyed])
        #expect(Sock.recvErrno(s.other.server) == ECONNABORTED)
        #expect(Sock.recvErrno(s.other.client) == ECONNRESET)
        #expect(s.allTargetsAlive())
        // The same cookie again: the socket is gone, nothing else is picked instead.
        let again = try await SocketKiller().kill(req)
        #expect(again.results.isEmpty)
        #expect(s.allTargetsAlive())
    }

    /// TIME-WAIT sockets are selected when the filter names the state, reported as not destroyable
    /// (the kernel has nothing to abort), and not counted as failures.
    @Test(arguments: backends) func timeWaitIsNotDestroyableNotAFailure(backend: KillBackend) throws {
        let ns = try TestNetns("tw")
        defer { ns.remove() }
        let net = try NamespaceResolver().resolve(ns.name)
        try NamespaceRunner.run(in: net) { () throws -> Void in
            let l = try Sock.listener("127.0.0.1", 7207, v6: false)
            defer { close(l) }
            let p = try Sock.pair(listener: l, "127.0.0.1", 7207, v6: false)
            // The client closes first: its end goes through FIN-WAIT to TIME-WAIT.
            close(p.client)
            var b: UInt8 = 0
            _ = recv(p.server, &b, 1, 0)
            close(p.server)
        }
        func timeWait() -> Int {
            ns.exec(["ss", "-Htn", "state", "time-wait", "dport = :7207"]).stdout.split(separator: "\n").count
        }
        for _ in 0..<50 where timeWait() == 0 { usleep(20_000) }
        #expect(timeWait() == 1)
        var req = try KillRequest(filter: "state time-wait dport = :7207", protocols: [.tcp], namespaces: .list([net]))
        req.backend = backend
        let report = try SocketKiller().kill(req)
        #expect(report.results.map(\.outcome) == [.notDestroyable])
        #expect(report.results.first?.socket.state == .timeWait)
        #expect(report.summary.failed == 0 && report.summary.namespaces.first?.notDestroyable == 1)
        #expect(timeWait() == 1, "still there: TIME-WAIT cannot be destroyed")
    }

    /// A request socket (SYN-RECV: TCP_DEFER_ACCEPT holds the server side of the handshake until
    /// data arrives) under `backend: .bpf`: the iterator cannot destroy it, so it goes to netlink by
    /// cookie and is reported destroyed; the listener and an established pair on it are untouched,
    /// and the client's next exchange meets a reset (the server end is gone).
    @Test func synRecvGoesFromBPFToNetlink() throws {
        let ns = try TestNetns("synrecv")
        defer { ns.remove() }
        let net = try NamespaceResolver().resolve(ns.name)
        let (l, c, est) = try NamespaceRunner.run(in: net) { () -> (Int32, Int32, (client: Int32, server: Int32)) in
            let l = try Sock.make(SOCK_STREAM, v6: false)
            var seconds: Int32 = 30
            _ = setsockopt(l, Int32(IPPROTO_TCP), 9 /* TCP_DEFER_ACCEPT */, &seconds, 4)
            try Sock.bind(l, "127.0.0.1", 7205, v6: false)
            _ = try Sock.check(listen(l, 16), "listen")
            // One pair that sends at once (established), one client that stays silent (SYN-RECV).
            let a = try Sock.make(SOCK_STREAM, v6: false)
            try Sock.connect(a, "127.0.0.1", 7205, v6: false)
            _ = "x".withCString { send(a, $0, 1, 0) }
            let b = try Sock.accept(l)
            let c = try Sock.make(SOCK_STREAM, v6: false)
            try Sock.connect(c, "127.0.0.1", 7205, v6: false)
            return (l, c, (a, b))
        }
        defer { close(l); close(c); close(est.client); close(est.server) }
        func synRecv() -> [String] {
            ns.exec(["ss", "-Htn", "state", "syn-recv", "sport = :7205"]).stdout.split(separator: "\n").map(String.init)
        }
        #expect(synRecv().count == 1)
        var req = try KillRequest(filter: "state syn-recv sport = :7205", protocols: [.tcp], namespaces: .list([net]))
        req.backend = .bpf
        let report = try SocketKiller().kill(req)
        #expect(report.summary.backend == "bpf")
        #expect(report.results.count == 1)
        #expect([SocketState.synRecv, .newSynRecv].contains(report.results.first?.socket.state ?? .close))
        #expect(report.results.first?.outcome == .destroyed)
        #expect(synRecv().isEmpty, "the request socket is gone")
        // The listener and the established pair are untouched; the silent client's data is refused.
        var buf: UInt8 = 0
        #expect(recv(est.server, &buf, 1, 0) == 1 && buf == UInt8(ascii: "x"))
        #expect(Sock.exchanges(est.client, est.server))
        _ = "y".withCString { send(c, $0, 1, 0) }
        #expect(Sock.recvErrno(c) == ECONNRESET)
        #expect(ns.exec(["ss", "-Htln", "sport = :7205"]).stdout.split(separator: "\n").count == 1)
    }

    /// auto: BPF once the programs are loaded in the process and the filter translates, netlink
    /// (with the reason) when it does not; forcing BPF with an untranslatable filter is a usage
    /// error that destroys nothing. (The small-table fallback is KillTests.autoSaysWhichBackend.)
    @Test func autoPicksAndExplains() throws {
        let ns = try TestNetns("auto")
        defer { ns.remove() }
        let net = try NamespaceResolver().resolve(ns.name)
        let s = try NamespaceRunner.run(in: net) { try Sockets.make() }
        defer { s.close() }
        let killer = SocketKiller()
        var load = try KillRequest(filter: "dport = :7201", protocols: [.tcp], namespaces: .list([net]), dryRun: true)
        load.backend = .bpf
        #expect(try killer.kill(load).summary.backend == "bpf")
        let translated = try killer.kill(KillRequest(filter: "dport = :7201 or dport = :7202", protocols: [.tcp], namespaces: .list([net]), dryRun: true))
        #expect(translated.summary.backend == "bpf")
        #expect(translated.results.count == 3)
        let fwmark = try killer.kill(KillRequest(filter: "dport = :7201 and fwmark 0x0/0x0", protocols: [.tcp], namespaces: .list([net]), dryRun: true))
        #expect(fwmark.summary.backend == "netlink")
        #expect(fwmark.summary.backendReason.contains("fwmark"))
        #expect(fwmark.results.count == 2)
        var forced = try KillRequest(filter: "dport = :7201 and fwmark 0x0/0x0", protocols: [.tcp], namespaces: .list([net]))
        forced.backend = .bpf
        #expect(throws: KillError.self) { try killer.kill(forced) }
        #expect(s.allTargetsAlive())
    }
}

/// The namespaces of these tests: sockctl-t-killer-AREA-PID-N, loopback up.
func TestNetns(_ area: String) throws -> TestNamespace { try TestNamespace("killer-" + area) }

/// Targets (dport 7201): TCP v4 and v6 clients, connected UDP v4 and v6. Others: TCP pairs on 7202
/// (v4) and 7204 (v6), and a v4 client of a dual-stack listener on 7203 whose accepted end is an
/// IPv4-mapped IPv6 socket (10.77.0.1, added to lo).
struct Sockets: Sendable {
    struct Target: Sendable { var name: String; var owner: Int32; var tcpPeer: Int32?; var udpPeer: Int32? }
    var targets: [Target] = []
    var other: (client: Int32, server: Int32)
    var other6: (client: Int32, server: Int32)
    var mapped: (client: Int32, server: Int32)
    var udpPeers: [Int32] = []
    var listeners: [Int32] = []

    static func make() throws -> Sockets {
        try runChecked(["/usr/sbin/ip", "addr", "add", "10.77.0.1/32", "dev", "lo"])
        var out = Sockets(other: (-1, -1), other6: (-1, -1), mapped: (-1, -1))
        for v6 in [false, true] {
            let host = v6 ? "::1" : "127.0.0.1"
            let l = try Sock.listener(host, 7201, v6: v6)
            let p = try Sock.pair(listener: l, host, 7201, v6: v6)
            let peer = try Sock.make(SOCK_DGRAM, v6: v6)
            try Sock.bind(peer, host, 7201, v6: v6)
            let u = try Sock.make(SOCK_DGRAM, v6: v6)
            try Sock.connect(u, host, 7201, v6: v6)
            out.targets.append(Target(name: "tcp\(v6 ? 6 : 4)", owner: p.client, tcpPeer: p.server))
            out.targets.append(Target(name: "udp\(v6 ? 6 : 4)", owner: u, tcpPeer: nil, udpPeer: peer))
            out.udpPeers.append(peer)
            out.listeners.append(l)
            // The accepted end of a target pair (sport 7201) is not a target: keep it readable.
            out.listeners.append(p.server)
        }
        let l2 = try Sock.listener("127.0.0.1", 7202, v6: false)
        out.other = try Sock.pair(listener: l2, "127.0.0.1", 7202, v6: false)
        let l4 = try Sock.listener("::1", 7204, v6: true)
        out.other6 = try Sock.pair(listener: l4, "::1", 7204, v6: true)
        let l3 = try Sock.listener("::", 7203, v6: true)
        let c = try Sock.make(SOCK_STREAM, v6: false)
        try Sock.bind(c, "10.77.0.1", 0, v6: false)
        try Sock.connect(c, "10.77.0.1", 7203, v6: false)
        let a = try Sock.accept(l3)
        out.mapped = (c, a)
        out.listeners += [l2, l3, l4]
        return out
    }

    func close() {
        var fds = [other.client, other.server, other6.client, other6.server, mapped.client, mapped.server] + udpPeers + listeners
        fds += targets.map(\.owner)
        for fd in fds where fd >= 0 { _ = Glibc.close(fd) }
    }

    /// Every target still moves data both ways.
    func allTargetsAlive() -> Bool {
        targets.allSatisfy { t in
            if let p = t.tcpPeer { return Sock.exchanges(t.owner, p) && Sock.exchanges(p, t.owner) }
            return Sock.exchanges(t.owner, t.udpPeer!)
        }
    }

    /// The bystander pairs still move data both ways.
    func othersAlive(includingMapped: Bool = true) -> Bool {
        (includingMapped ? [other, other6, mapped] : [other, other6]).allSatisfy { Sock.exchanges($0.client, $0.server) && Sock.exchanges($0.server, $0.client) }
    }
}
