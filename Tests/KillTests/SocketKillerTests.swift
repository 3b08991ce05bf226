import Foundation
import Glibc
import Kill
import Namespaces
import SockDiag
import SocketFilter
import Testing

/// The library API a daemon calls: select by filter or by cookies in a namespace the test creates;
/// exactly the chosen sockets die (owner ECONNABORTED, TCP peer ECONNRESET), the rest still move data.
@Suite struct SocketKillerTests {
    @Test func killsByFilter() throws {
        let ns = try TestNetns("filter")
        defer { ns.remove() }
        let net = try NamespaceResolver().resolve(ns.name)
        let s = try NamespaceRunner.run(in: net) { try Sockets.make() }
        defer { s.close() }
        let killer = SocketKiller()

        // Refusals and a dry run touch nothing.
        #expect(throws: KillError.emptyFilter) { try killer.kill(KillRequest(filter: "", namespaces: .list([net]))) }
        #expect(throws: KillError.tooManyMatches(count: 2, max: 1)) {
            try killer.kill(KillRequest(filter: "dport = :7201", protocols: [.tcp, .udp], namespaces: .list([net]), max: 1))
        }
        let dry = try killer.kill(KillRequest(filter: "dport = :7201", protocols: [.tcp, .udp], namespaces: .list([net]), dryRun: true))
        #expect(dry.results.map(\.outcome) == [.wouldDestroy, .wouldDestroy])
        #expect(Sockets.exchanges(s.target.client, s.target.server) && Sockets.exchanges(s.udp, s.udpPeer))

        var streamed: [KillResult] = []
        let summary = try killer.kill(KillRequest(filter: "dport = :7201", protocols: [.tcp, .udp], namespaces: .list([net]))) {
            streamed.append($0)
        }
        #expect(Set(streamed.map(\.socket.cookie)) == [Sockets.cookie(s.target.client), Sockets.cookie(s.udp)])
        #expect(streamed.allSatisfy { $0.outcome == .destroyed && $0.netns == ns.name })
        #expect(summary.namespaces.count == 1 && summary.namespaces[0].destroyed == 2 && summary.namespaces[0].netns == ns.name)
        #expect(Sockets.recvErrno(s.target.client) == ECONNABORTED)
        #expect(Sockets.recvErrno(s.target.server) == ECONNRESET)
        #expect(Sockets.recvErrno(s.udp) == ECONNABORTED)
        #expect(Sockets.exchanges(s.other.client, s.other.server) && Sockets.exchanges(s.other.server, s.other.client))
    }

    @Test func killsByCookieFromAsyncCode() async throws {
        let ns = try TestNetns("cookie")
        defer { ns.remove() }
        let net = try NamespaceResolver().resolve(ns.name)
        let s = try await NamespaceRunner.run(in: net) { try Sockets.make() }
        defer { s.close() }
        let victim = Sockets.cookie(s.other.server)
        let report = try await SocketKiller().kill(KillRequest(cookies: [victim], namespaces: .list([net])))
        #expect(report.results.map(\.socket.cookie) == [victim])
        #expect(report.results.map(\.outcome) == [.destroyed])
        #expect(Sockets.recvErrno(s.other.server) == ECONNABORTED)
        #expect(Sockets.recvErrno(s.other.client) == ECONNRESET)
        #expect(Sockets.exchanges(s.target.client, s.target.server) && Sockets.exchanges(s.udp, s.udpPeer))
        // The same cookie again: the socket is gone, nothing else is picked instead.
        let again = try await SocketKiller().kill(KillRequest(cookies: [victim], namespaces: .list([net])))
        #expect(again.results.isEmpty)
        #expect(Sockets.exchanges(s.target.server, s.target.client))
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

/// Two TCP pairs on 127.0.0.1 (ports 7201 = target, 7202 = other) and a connected UDP socket to 7201.
struct Sockets: Sendable {
    var target: (client: Int32, server: Int32)
    var other: (client: Int32, server: Int32)
    var udp: Int32, udpPeer: Int32
    var listeners: [Int32]

    static func make() throws -> Sockets {
        let l1 = try listener(7201), l2 = try listener(7202)
        let t = try pair(l1, 7201), o = try pair(l2, 7202)
        let peer = try socketFD(SOCK_DGRAM)
        try bindTo(peer, 7201)
        let u = try socketFD(SOCK_DGRAM)
        var a = addr(7201)
        guard withUnsafePointer(to: &a, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(u, $0, 16) } }) == 0 else {
            throw TestFailure(description: "udp connect: errno \(errno)")
        }
        return Sockets(target: t, other: o, udp: u, udpPeer: peer, listeners: [l1, l2])
    }

    func close() {
        for fd in [target.client, target.server, other.client, other.server, udp, udpPeer] + listeners { _ = Glibc.close(fd) }
    }

    static func addr(_ port: UInt16) -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        a.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return a
    }

    static func socketFD(_ type: __socket_type) throws -> Int32 {
        let fd = socket(AF_INET, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure(description: "socket: errno \(errno)") }
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func bindTo(_ fd: Int32, _ port: UInt16) throws {
        var a = addr(port)
        guard withUnsafePointer(to: &a, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, 16) } }) == 0 else {
            throw TestFailure(description: "bind \(port): errno \(errno)")
        }
    }

    static func listener(_ port: UInt16) throws -> Int32 {
        let fd = try socketFD(SOCK_STREAM)
        try bindTo(fd, port)
        guard listen(fd, 16) == 0 else { throw TestFailure(description: "listen: errno \(errno)") }
        return fd
    }

    static func pair(_ l: Int32, _ port: UInt16) throws -> (client: Int32, server: Int32) {
        let c = try socketFD(SOCK_STREAM)
        var a = addr(port)
        guard withUnsafePointer(to: &a, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(c, $0, 16) } }) == 0 else {
            throw TestFailure(description: "connect \(port): errno \(errno)")
        }
        let s = accept(l, nil, nil)
        guard s >= 0 else { throw TestFailure(description: "accept: errno \(errno)") }
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        _ = setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
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
