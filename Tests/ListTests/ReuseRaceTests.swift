import Foundation
import TestSupport
import Testing
import Namespaces
import SockDiag
#if canImport(Glibc)
import Glibc
#endif

/// A destroy names the socket by its cookie: when the selected socket closed and a new one took the
/// same 4-tuple between the dump and the destroy, the new one must survive.
@Suite struct ReuseRaceTests {
    /// An IPv4 loopback TCP socket address.
    func loopback(_ port: UInt16) -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        a.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return a
    }

    func call(_ fd: Int32, _ f: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Int32, _ addr: sockaddr_in) -> Int32 {
        var a = addr
        return withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { f(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    }

    /// A client bound to a fixed port, connected to the listener; returns (client, accepted).
    func connectPair(listener: Int32, serverPort: UInt16, clientPort: UInt16) throws -> (Int32, Int32) {
        let c = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(c, SOL_SOCKET, SO_REUSEADDR, &one, 4)
        try #require(call(c, bind, loopback(clientPort)) == 0, "bind: \(errno)")
        try #require(call(c, connect, loopback(serverPort)) == 0, "connect: \(errno)")
        let a = accept(listener, nil, nil)
        try #require(a >= 0)
        return (c, a)
    }

    @Test func aReused4TupleIsNeverHit() throws {
        let ns = try TestNamespace("race")
        let target = try NetworkNamespace.resolve(ns.name)
        try NamespaceRunner.run(in: target) {
            let l = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(l) }
            var one: Int32 = 1
            setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, 4)
            try #require(call(l, bind, loopback(7201)) == 0 && listen(l, 8) == 0)

            // Select the first connection, as a kill's dump would.
            let (c1, a1) = try connectPair(listener: l, serverPort: 7201, clientPort: 7202)
            let client = try SockDiagClient()
            var selected: [Socket] = []
            var q = DumpQuery(kinds: [.tcp], families: [UInt8(AF_INET)], states: SocketState.established.mask)
            q.bytecode = [:]
            try client.dump(q) { s in if s.sourcePort == 7202 { selected.append(s) } }
            try #require(selected.count == 1)

            // It closes with a RST (no TIME-WAIT) and a new connection takes the same 4-tuple.
            var lin = linger(l_onoff: 1, l_linger: 0)
            setsockopt(c1, SOL_SOCKET, SO_LINGER, &lin, socklen_t(MemoryLayout<linger>.size))
            close(c1); close(a1)
            let (c2, a2) = try connectPair(listener: l, serverPort: 7201, clientPort: 7202)
            defer { close(c2); close(a2) }

            // Destroying the selected (stale) socket finds nothing and touches nothing.
            let outcomes = try SockDiagClient.destroy(selected, on: try SockDiagClient.openSocket())
            #expect(outcomes == [.alreadyGone])
            var byte: UInt8 = 42
            #expect(send(c2, &byte, 1, 0) == 1)
            var got: UInt8 = 0
            #expect(recv(a2, &got, 1, 0) == 1 && got == 42, "the new connection on the reused 4-tuple was hit")

            // Control: the same destroy with the live socket's cookie does kill it.
            var live: [Socket] = []
            try client.dump(q) { s in if s.sourcePort == 7202 { live.append(s) } }
            try #require(live.count == 1 && live[0].cookie != selected[0].cookie)
            #expect(try SockDiagClient.destroy(live, on: try SockDiagClient.openSocket()) == [.destroyed])
            #expect(send(c2, &byte, 1, 0) == -1 && errno == ECONNABORTED)
        }
    }
}
