import Foundation
import Glibc
import Kill
import Namespaces
import SockDiag
import SocketFilter
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
        #expect(Set(streamed.map(\.socket.cookie)) == Set(s.targets.map { Sockets.cookie($0.owner) }))
        #expect(streamed.allSatisfy { $0.outcome == .destroyed && $0.netns == ns.name })
        #expect(streamed.allSatisfy { ["127.0.0.1", "::1"].contains($0.socket.destination?.description ?? "-") && $0.socket.destinationPort == 7201 })
        #expect(streamed.allSatisfy { $0.socket.source == $0.socket.destination })
        #expect(summary.namespaces.count == 1 && summary.namespaces[0].destroyed == 4 && summary.namespaces[0].netns == ns.name)
        for t in s.targets {
            #expect(Sockets.recvErrno(t.owner) == ECONNABORTED, "\(t.name) owner")
            if let peer = t.tcpPeer { #expect(Sockets.recvErrno(peer) == ECONNRESET, "\(t.name) peer") }
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
        #expect(report.results.map(\.socket.cookie) == [Sockets.cookie(s.mapped.server)])
        #expect(report.results.first?.socket.family == UInt8(AF_INET6))
        #expect(report.results.map(\.outcome) == [.destroyed])
        #expect(Sockets.recvErrno(s.mapped.server) == ECONNABORTED)
        #expect(Sockets.recvErrno(s.mapped.client) == ECONNRESET)
        #expect(s.allTargetsAlive() && s.othersAlive(includingMapped: false))
    }

    @Test(arguments: backends) func killsByCookieFromAsyncCode(backend: KillBackend) async throws {
        let ns = try TestNetns("cookie")
        defer { ns.remove() }
        let net = try NamespaceResolver().resolve(ns.name)
        let s = try await NamespaceRunner.run(in: net) { try Sockets.make() }
        defer { s.close() }
        let victim = Sockets.cookie(s.other.server)
        var req = KillRequest(cookies: [victim], namespaces: .list([net]))
        req.backend = backend
        let report = try await SocketKiller().kill(req)
        #expect(report.summary.backend == backend.rawValue)
        #expect(report.results.map(\.socket.cookie) == [victim])
        #expect(report.results.map(\.outcome) == [.destroyed])
        #expect(Sockets.recvErrno(s.other.server) == ECONNABORTED)
        #expect(Sockets.recvErrno(s.other.client) == ECONNRESET)
        #expect(s.allTargetsAlive())
        // The same cookie again: the socket is gone, nothing else is picked instead.
        let again = try await SocketKiller().kill(req)
        #expect(again.results.isEmpty)
        #expect(s.allTargetsAlive())
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

/// A network namespace made for one test (`ip netns add`, loopback up); `remove()` deletes it.
struct TestNetns {
    nonisolated(unsafe) static var counter = 0
    static let lock = NSLock()
    let name: String
    init(_ area: String) throws {
        let n = TestNetns.lock.withLock { TestNetns.counter += 1; return TestNetns.counter }
        name = "sockctl-t-killer-\(area)-\(getpid())-\(n)"
        try run("/usr/sbin/ip", "netns", "add", name)
        try run("/usr/sbin/ip", "-n", name, "link", "set", "lo", "up")
    }
    func remove() { try? run("/usr/sbin/ip", "netns", "delete", name) }
}

struct TestFailure: Error, CustomStringConvertible { let description: String }

func run(_ args: String...) throws {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: args[0])
    p.arguments = Array(args.dropFirst())
    try p.run()
    p.waitUntilExit()
    if p.terminationStatus != 0 { throw TestFailure(description: "\(args.joined(separator: " ")) failed") }
}

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
        try run("/usr/sbin/ip", "addr", "add", "10.77.0.1/32", "dev", "lo")
        var out = Sockets(other: (-1, -1), other6: (-1, -1), mapped: (-1, -1))
        for v6 in [false, true] {
            let host = v6 ? "::1" : "127.0.0.1"
            let l = try listener(host, 7201, v6: v6)
            let p = try pair(l, host, 7201, v6: v6)
            let peer = try socketFD(SOCK_DGRAM, v6: v6)
            try bindTo(peer, host, 7201, v6: v6)
            let u = try socketFD(SOCK_DGRAM, v6: v6)
            try connectTo(u, host, 7201, v6: v6)
            out.targets.append(Target(name: "tcp\(v6 ? 6 : 4)", owner: p.client, tcpPeer: p.server))
            out.targets.append(Target(name: "udp\(v6 ? 6 : 4)", owner: u, tcpPeer: nil, udpPeer: peer))
            out.udpPeers.append(peer)
            out.listeners.append(l)
            // The accepted end of a target pair (sport 7201) is not a target: keep it readable.
            out.listeners.append(p.server)
        }
        let l2 = try listener("127.0.0.1", 7202, v6: false)
        out.other = try pair(l2, "127.0.0.1", 7202, v6: false)
        let l4 = try listener("::1", 7204, v6: true)
        out.other6 = try pair(l4, "::1", 7204, v6: true)
        let l3 = try listener("::", 7203, v6: true)
        let c = try socketFD(SOCK_STREAM, v6: false)
        try bindTo(c, "10.77.0.1", 0, v6: false)
        try connectTo(c, "10.77.0.1", 7203, v6: false)
        let a = accept(l3, nil, nil)
        guard a >= 0 else { throw TestFailure(description: "accept: errno \(errno)") }
        setTimeout(a)
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
            if let p = t.tcpPeer { return Sockets.exchanges(t.owner, p) && Sockets.exchanges(p, t.owner) }
            return Sockets.exchanges(t.owner, t.udpPeer!)
        }
    }

    /// The bystander pairs still move data both ways.
    func othersAlive(includingMapped: Bool = true) -> Bool {
        (includingMapped ? [other, other6, mapped] : [other, other6]).allSatisfy { Sockets.exchanges($0.client, $0.server) && Sockets.exchanges($0.server, $0.client) }
    }

    static func sockaddr(_ host: String, _ port: UInt16, v6: Bool) -> [UInt8] {
        if v6 {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = port.bigEndian
            _ = inet_pton(AF_INET6, host, &a.sin6_addr)
            return withUnsafeBytes(of: a) { Array($0) }
        }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        _ = inet_pton(AF_INET, host, &a.sin_addr)
        return withUnsafeBytes(of: a) { Array($0) }
    }

    static func setTimeout(_ fd: Int32) {
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    static func socketFD(_ type: __socket_type, v6: Bool) throws -> Int32 {
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure(description: "socket: errno \(errno)") }
        setTimeout(fd)
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4)
        return fd
    }

    static func bindTo(_ fd: Int32, _ host: String, _ port: UInt16, v6: Bool) throws {
        let sa = sockaddr(host, port, v6: v6)
        let rc = sa.withUnsafeBytes { bind(fd, $0.baseAddress!.assumingMemoryBound(to: Glibc.sockaddr.self), socklen_t($0.count)) }
        guard rc == 0 else { throw TestFailure(description: "bind \(host):\(port): errno \(errno)") }
    }

    static func connectTo(_ fd: Int32, _ host: String, _ port: UInt16, v6: Bool) throws {
        let sa = sockaddr(host, port, v6: v6)
        let rc = sa.withUnsafeBytes { connect(fd, $0.baseAddress!.assumingMemoryBound(to: Glibc.sockaddr.self), socklen_t($0.count)) }
        guard rc == 0 else { throw TestFailure(description: "connect \(host):\(port): errno \(errno)") }
    }

    static func listener(_ host: String, _ port: UInt16, v6: Bool) throws -> Int32 {
        let fd = try socketFD(SOCK_STREAM, v6: v6)
        try bindTo(fd, host, port, v6: v6)
        guard listen(fd, 16) == 0 else { throw TestFailure(description: "listen: errno \(errno)") }
        return fd
    }

    static func pair(_ l: Int32, _ host: String, _ port: UInt16, v6: Bool) throws -> (client: Int32, server: Int32) {
        let c = try socketFD(SOCK_STREAM, v6: v6)
        try connectTo(c, host, port, v6: v6)
        let s = accept(l, nil, nil)
        guard s >= 0 else { throw TestFailure(description: "accept: errno \(errno)") }
        setTimeout(s)
        return (c, s)
    }

    static func cookie(_ fd: Int32) -> UInt64 {
        var c: UInt64 = 0
        var len = socklen_t(8)
        _ = getsockopt(fd, SOL_SOCKET, 57 /* SO_COOKIE */, &c, &len)
        return c
    }

    /// errno of the next recv (0 when a byte arrived).
    static func recvErrno(_ fd: Int32) -> Int32 {
        var b: UInt8 = 0
        return recv(fd, &b, 1, 0) < 0 ? errno : 0
    }

    /// One byte from `a` arrives at `b`.
    static func exchanges(_ a: Int32, _ b: Int32) -> Bool {
        var x: UInt8 = 7
        guard send(a, &x, 1, Int32(MSG_NOSIGNAL)) == 1 else { return false }
        var y: UInt8 = 0
        return recv(b, &y, 1, 0) == 1 && y == 7
    }
}
