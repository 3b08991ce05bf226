@testable import BPF
import Foundation
import Glibc
import TestSupport
import Testing
import CSockDestroy

/// One loaded destroyer for the whole test process (loading once per process is the design).
let sharedDestroyer = Result<BPFSocketDestroyer, BPFError> { () throws(BPFError) in try BPFSocketDestroyer() }

func destroyer() throws -> BPFSocketDestroyer { try sharedDestroyer.get() }

/// A listener and `count` connected pairs on host:port inside a namespace.
struct Group {
    var listener: Int32
    var pairs: [(client: Int32, server: Int32)]
    var clientCookies: Set<UInt64> { Set(pairs.map { Sock.cookie($0.client) }) }
    var serverCookies: Set<UInt64> { Set(pairs.map { Sock.cookie($0.server) }) }
    func closeAll() { close(listener); for p in pairs { close(p.client); close(p.server) } }
}

func openGroup(_ host: String, _ port: UInt16, count: Int, v6: Bool) throws -> Group {
    let l = try Sock.listener(host, port, v6: v6)
    return Group(listener: l, pairs: try (0..<count).map { _ in try Sock.pair(listener: l, host, port, v6: v6) })
}

/// After destroying everything: the listener and exactly one end of each pair were destroyed by
/// the iterator (the other end died of the RST first, as on any loopback pair), each reported once.
func expectEveryPairGone(_ r: BPFDestroyResult, _ g: Group, sourceLocation: SourceLocation = #_sourceLocation) {
    let seen = r.records.map(\.cookie)
    #expect(Set(seen).count == seen.count, "a socket was reported twice", sourceLocation: sourceLocation)
    #expect(seen.contains(Sock.cookie(g.listener)), sourceLocation: sourceLocation)
    #expect(r.records.allSatisfy { $0.outcome == .destroyed }, sourceLocation: sourceLocation)
    #expect(r.counts.destroyed == UInt64(seen.count), sourceLocation: sourceLocation)
    for p in g.pairs {
        let ends = [Sock.cookie(p.client), Sock.cookie(p.server)].filter(seen.contains)
        #expect(ends.count == 1, sourceLocation: sourceLocation)
    }
}

@Suite("BPF destroy backend (root, network namespaces)")
struct BPFDestroyTests {
    @Test func tcpIPv4SubsetByDportRangeAndDstPrefix() throws {
        let ns = try TestNetns()
        defer { ns.remove() }
        let (hit1, hit2, spared) = try ns.run {
            (try openGroup("127.0.0.1", 5001, count: 4, v6: false),
             try openGroup("127.0.0.1", 5002, count: 3, v6: false),
             try openGroup("127.0.0.1", 5003, count: 4, v6: false))
        }
        defer { hit1.closeAll(); hit2.closeAll(); spared.closeAll() }
        let before = try ns.ssTCPCookies()
        #expect(before.isSuperset(of: hit1.clientCookies.union(spared.clientCookies)))

        let spec = BPFDestroySpec(clauses: [.init(family: .ipv4, destination: BPFPrefix("127.0.0.0/8"),
                                                  destinationPorts: 5001...5002)], protocols: [.tcp])
        let d = try destroyer()
        let result = try ns.run { try d.destroy(spec) }

        let expected = hit1.clientCookies.union(hit2.clientCookies)
        #expect(Set(result.records.map(\.cookie)) == expected)
        #expect(result.records.count == expected.count)
        #expect(result.records.allSatisfy { $0.outcome == .destroyed && $0.clause == 0 && $0.family == AF_INET })
        #expect(result.records.allSatisfy { $0.destination == "127.0.0.1" && (5001...5002).contains($0.destinationPort) })
        #expect(result.counts.destroyed == UInt64(expected.count))

        let after = try ns.ssTCPCookies()
        #expect(after.isDisjoint(with: expected))
        #expect(after.isSuperset(of: spared.clientCookies.union(spared.serverCookies)))
        for p in hit1.pairs + hit2.pairs {
            #expect(Sock.recvErrno(p.client) == ECONNABORTED)
            #expect(Sock.recvErrno(p.server) == ECONNRESET)
        }
        for p in spared.pairs {
            #expect(Sock.exchanges(p.client, p.server))
            #expect(Sock.exchanges(p.server, p.client))
        }
    }

    @Test func tcpIPv6AndV4MappedFamilies() throws {
        let ns = try TestNetns()
        defer { ns.remove() }
        // native IPv6 on ::1 and IPv4-mapped traffic on a dual-stack [::]:6002 listener
        let (v6, mapped) = try ns.run {
            (try openGroup("::1", 6001, count: 3, v6: true), try openGroup("::", 6002, count: 0, v6: true))
        }
        let mappedPairs = try ns.run { try (0..<3).map { _ in try Sock.pair(listener: mapped.listener, "::ffff:127.0.0.1", 6002, v6: true) } }
        defer { v6.closeAll(); mapped.closeAll(); for p in mappedPairs { close(p.client); close(p.server) } }
        let d = try destroyer()

        // an IPv4 clause leaves native IPv6 alone and takes the v4-mapped clients
        let v4 = try ns.run { try d.destroy(BPFDestroySpec(clauses: [.init(family: .ipv4, destination: BPFPrefix("127.0.0.1"), destinationPorts: 6002...6002)], protocols: [.tcp])) }
        #expect(Set(v4.records.map(\.cookie)) == Set(mappedPairs.map { Sock.cookie($0.client) }))
        #expect(v4.records.allSatisfy { $0.family == AF_INET6 && $0.destination == "::ffff:127.0.0.1" && $0.outcome == .destroyed })
        for p in mappedPairs {
            #expect(Sock.recvErrno(p.client) == ECONNABORTED)
            #expect(Sock.recvErrno(p.server) == ECONNRESET)
        }
        for p in v6.pairs { #expect(Sock.exchanges(p.client, p.server)) }

        // an IPv6 prefix clause on the client side (src ::1/128, dport 6001): only those clients
        let r6 = try ns.run { try d.destroy(BPFDestroySpec(clauses: [.init(family: .ipv6, source: BPFPrefix("::1/128"), destinationPorts: 6001...6001)], protocols: [.tcp])) }
        #expect(Set(r6.records.map(\.cookie)) == v6.clientCookies)
        #expect(r6.records.allSatisfy { $0.family == AF_INET6 && $0.destination == "::1" })
        for p in v6.pairs {
            #expect(Sock.recvErrno(p.client) == ECONNABORTED)
            #expect(Sock.recvErrno(p.server) == ECONNRESET)
        }
        #expect(try ns.ssTCPCookies().contains(Sock.cookie(mapped.listener)))

        // a listener bound to a v4-mapped address is IPv4 too; the [::] listener is not
        let mappedListener = try ns.run { try Sock.listener("::ffff:127.0.0.1", 6003, v6: true) }
        defer { close(mappedListener) }
        let ls = try ns.run { try d.destroy(BPFDestroySpec(clauses: [.init(family: .ipv4, states: [10])], protocols: [.tcp])) }
        #expect(ls.records.map(\.cookie) == [Sock.cookie(mappedListener)])
        #expect(try ns.ssTCPCookies().contains(Sock.cookie(mapped.listener)))
    }

    @Test func connectedUDPOwnersGetECONNABORTED() throws {
        let ns = try TestNetns()
        defer { ns.remove() }
        let (server, clients, other) = try ns.run { () -> (Int32, [Int32], Int32) in
            let s = try Sock.make(Int32(SOCK_DGRAM.rawValue), v6: false)
            try Sock.bind(s, "127.0.0.1", 7001, v6: false)
            let cs = try (0..<3).map { _ -> Int32 in
                let c = try Sock.make(Int32(SOCK_DGRAM.rawValue), v6: false)
                try Sock.connect(c, "127.0.0.1", 7001, v6: false)
                return c
            }
            let o = try Sock.make(Int32(SOCK_DGRAM.rawValue), v6: false)
            try Sock.bind(o, "127.0.0.1", 7002, v6: false)
            try Sock.connect(o, "127.0.0.1", 7001, v6: false)
            return (s, cs, o)
        }
        defer { close(server); close(other); clients.forEach { close($0) } }
        let d = try destroyer()
        // connected (state 1) UDP sockets to port 7001 whose own port is not 7002
        let spec = BPFDestroySpec(clauses: [.init(sourcePorts: 1024...7001, destinationPorts: 7001...7001, states: [1]),
                                           .init(sourcePorts: 7003...65535, destinationPorts: 7001...7001, states: [1])],
                                  protocols: [.udp])
        let r = try ns.run { try d.destroy(spec) }
        #expect(Set(r.records.map(\.cookie)) == Set(clients.map(Sock.cookie)))
        #expect(r.records.allSatisfy { $0.ipProtocol == IPPROTO_UDP && $0.outcome == .destroyed })
        for c in clients { #expect(Sock.recvErrno(c) == ECONNABORTED) }
        #expect(Sock.exchanges(other, server))

        // IPv6 connected UDP, by destination prefix
        let (s6, c6) = try ns.run { () -> (Int32, Int32) in
            let s = try Sock.make(Int32(SOCK_DGRAM.rawValue), v6: true)
            try Sock.bind(s, "::1", 7101, v6: true)
            let c = try Sock.make(Int32(SOCK_DGRAM.rawValue), v6: true)
            try Sock.connect(c, "::1", 7101, v6: true)
            return (s, c)
        }
        defer { close(s6); close(c6) }
        let r6 = try ns.run { try d.destroy(BPFDestroySpec(clauses: [.init(family: .ipv6, destination: BPFPrefix("::1/128"), destinationPorts: 7101...7101)], protocols: [.udp])) }
        #expect(r6.records.map(\.cookie) == [Sock.cookie(c6)])
        #expect(r6.records.first?.family == AF_INET6)
        #expect(Sock.recvErrno(c6) == ECONNABORTED)
    }

    @Test func cookieSetHitsOnlyListedCookiesNotA4TupleReuse() throws {
        let ns = try TestNetns()
        defer { ns.remove() }
        let g = try ns.run { try openGroup("127.0.0.1", 5101, count: 4, v6: false) }
        // the last pair: remember its cookie, close it, open a new one from the same local port
        let old = g.pairs[3]
        let oldCookie = Sock.cookie(old.client)
        var local = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(old.client, $0, &len) } }
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)  // RST on close: no TIME_WAIT holds the tuple
        _ = setsockopt(old.client, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(old.client); close(old.server)
        let reused = try ns.run { () -> (client: Int32, server: Int32) in
            let c = try Sock.make(Int32(SOCK_STREAM.rawValue), v6: false)
            try Sock.bind(c, "127.0.0.1", UInt16(bigEndian: local.sin_port), v6: false)
            try Sock.connect(c, "127.0.0.1", 5101, v6: false)
            return (c, try Sock.check(accept(g.listener, nil, nil), "accept"))
        }
        defer { close(g.listener); for p in g.pairs.prefix(3) { close(p.client); close(p.server) }; close(reused.client); close(reused.server) }
        #expect(Sock.cookie(reused.client) != oldCookie)

        let target = Sock.cookie(g.pairs[0].client)
        let d = try destroyer()
        let r = try ns.run { try d.destroy(BPFDestroySpec(cookies: [target, oldCookie], protocols: [.tcp])) }
        #expect(r.records.map(\.cookie) == [target])
        #expect(Sock.recvErrno(g.pairs[0].client) == ECONNABORTED)
        #expect(Sock.exchanges(reused.client, reused.server))
        for p in g.pairs[1...2] { #expect(Sock.exchanges(p.client, p.server)) }

        // cookies AND a clause: the clause narrows further (dport 1 matches none of them)
        let none = try ns.run { try d.destroy(BPFDestroySpec(clauses: [.init(destinationPorts: 1...1)], cookies: [Sock.cookie(g.pairs[1].client)], protocols: [.tcp])) }
        #expect(none.records.isEmpty)
        // cookies from the earlier request do not linger in the map
        let again = try ns.run { try d.destroy(BPFDestroySpec(cookies: [Sock.cookie(g.pairs[2].client)], protocols: [.tcp])) }
        #expect(again.records.map(\.cookie) == [Sock.cookie(g.pairs[2].client)])
        #expect(Sock.exchanges(g.pairs[1].client, g.pairs[1].server))
    }

    @Test func dryRunReportsAndDestroysNothing() throws {
        let ns = try TestNetns()
        defer { ns.remove() }
        let g = try ns.run { try openGroup("127.0.0.1", 5201, count: 5, v6: false) }
        defer { g.closeAll() }
        let d = try destroyer()
        let before = try ns.ssTCPCookies()
        let r = try ns.run { try d.destroy(.all(protocols: [.tcp], dryRun: true)) }
        #expect(Set(r.records.map(\.cookie)) == before)
        #expect(r.records.allSatisfy { $0.outcome == .wouldDestroy })
        #expect(r.counts.destroyed == 0)
        #expect(try ns.ssTCPCookies() == before)
        for p in g.pairs { #expect(Sock.exchanges(p.client, p.server)) }
    }

    /// The iterator walks the namespace of the thread calling destroy() (bpf_iter_create), not the
    /// one where the object was loaded and the links attached (the test process's own).
    @Test func iteratorFollowsCallingThreadNetns() throws {
        let a = try TestNetns(), b = try TestNetns()
        defer { a.remove(); b.remove() }
        let ga = try a.run { try openGroup("127.0.0.1", 5301, count: 3, v6: false) }
        let gb = try b.run { try openGroup("127.0.0.1", 5301, count: 3, v6: false) }
        defer { ga.closeAll(); gb.closeAll() }
        let d = try destroyer()
        let ra = try d.destroy(.all(protocols: [.tcp]), netnsPath: "/run/netns/\(a.name)")
        expectEveryPairGone(ra, ga)
        #expect(try a.ssTCPCookies().isEmpty)
        for p in gb.pairs { #expect(Sock.exchanges(p.client, p.server)) }
        #expect(throws: BPFError.self) { _ = try d.destroy(.all(), netnsPath: "/run/netns/sockctl-t-bpf-no-such-ns") }
        #expect(try b.ssTCPCookies() == gb.clientCookies.union(gb.serverCookies).union([Sock.cookie(gb.listener)]))
    }

    /// More matches than one read() of the iterator holds (32 KiB = 512 records): every socket is
    /// destroyed once and reported once.
    @Test func manySocketsAllReportedOnce() throws {
        let ns = try TestNetns()
        defer { ns.remove() }
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        if limit.rlim_cur < 4096 && limit.rlim_max >= 4096 { limit.rlim_cur = 4096; setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) }
        let g = try ns.run { try openGroup("127.0.0.1", 5401, count: 700, v6: false) }
        defer { g.closeAll() }
        let d = try destroyer()
        let dry = try ns.run { try d.destroy(.all(protocols: [.tcp], dryRun: true)) }
        #expect(dry.records.count == 1401 && Set(dry.records.map(\.cookie)).count == 1401)
        let r = try ns.run { try d.destroy(.all(protocols: [.tcp])) }
        #expect(r.records.count > 512)
        expectEveryPairGone(r, g)
        #expect(try ns.ssTCPCookies().isEmpty)
    }

    /// A request socket (TCP_NEW_SYN_RECV, 12): TCP_DEFER_ACCEPT keeps the server side of a
    /// handshake in SYN-RECV until data arrives. The iterator sees it and reports it as
    /// `.needsNetlink` without calling bpf_sock_destroy (which answers EOPNOTSUPP for request
    /// sockets on Linux 6.18); it stays for the netlink backend.
    @Test func synRecvRequestSocketIsReportedForNetlink() throws {
        let ns = try TestNetns()
        defer { ns.remove() }
        let (l, c) = try ns.run { () -> (Int32, Int32) in
            let l = try Sock.make(Int32(SOCK_STREAM.rawValue), v6: false)
            var defer_s: Int32 = 30
            _ = setsockopt(l, Int32(IPPROTO_TCP), 9 /* TCP_DEFER_ACCEPT */, &defer_s, 4)
            try Sock.bind(l, "127.0.0.1", 5601, v6: false)
            _ = try Sock.check(Glibc.listen(l, 16), "listen")
            let c = try Sock.make(Int32(SOCK_STREAM.rawValue), v6: false)
            try Sock.connect(c, "127.0.0.1", 5601, v6: false)
            return (l, c)
        }
        defer { close(l); close(c) }
        usleep(50_000)
        #expect(try sh("/usr/bin/ss", "-N", ns.name, "-Htn", "state", "syn-recv").contains(":5601"))
        let d = try destroyer()
        let r = try ns.run { try d.destroy(BPFDestroySpec(clauses: [.init(sourcePorts: 5601...5601, states: [12])], protocols: [.tcp])) }
        #expect(r.records.count == 1)
        #expect(r.records.first?.state == 12 && r.records.first?.stateName == "syn-recv")
        #expect(r.records.first?.outcome == .needsNetlink)
        #expect(r.counts.needsNetlink == 1 && r.counts.failed == 0)
        #expect(try sh("/usr/bin/ss", "-N", ns.name, "-Htn", "state", "syn-recv").contains(":5601"))
        #expect(try ns.ssTCPCookies().contains(Sock.cookie(c)))   // the client end was not touched
    }

    /// uid ranges and state sets: sockets opened by uid 4242 (on a thread that switched its own
    /// effective uid) are taken by `uids`, and a listener alone by `states: [10]`.
    @Test func uidRangeAndStateClauses() throws {
        let ns = try TestNetns()
        defer { ns.remove() }
        let (mine, theirs) = try ns.run { () -> (Group, [Int32]) in
            let g = try openGroup("127.0.0.1", 5801, count: 2, v6: false)
            guard sockctl_bpf_thread_setresuid(UInt32.max, 4242, UInt32.max) == 0 else { throw TestError("setresuid") }
            defer { _ = sockctl_bpf_thread_setresuid(UInt32.max, 0, UInt32.max) }
            let cs = try (0..<3).map { _ -> Int32 in
                let c = try Sock.make(Int32(SOCK_STREAM.rawValue), v6: false)
                try Sock.connect(c, "127.0.0.1", 5801, v6: false)
                return c
            }
            return (g, cs)
        }
        let accepted = try theirs.map { _ in try Sock.check(accept(mine.listener, nil, nil), "accept") }
        defer { mine.closeAll(); theirs.forEach { close($0) }; accepted.forEach { close($0) } }
        let d = try destroyer()
        let r = try ns.run { try d.destroy(BPFDestroySpec(clauses: [.init(uids: 4000...4999)], protocols: [.tcp])) }
        #expect(Set(r.records.map(\.cookie)) == Set(theirs.map(Sock.cookie)))
        #expect(r.records.allSatisfy { $0.uid == 4242 })
        for c in theirs { #expect(Sock.recvErrno(c) == ECONNABORTED) }
        for p in mine.pairs { #expect(Sock.exchanges(p.client, p.server)) }

        let l = try ns.run { try d.destroy(BPFDestroySpec(clauses: [.init(states: [10])], protocols: [.tcp])) }
        #expect(l.records.map(\.cookie) == [Sock.cookie(mine.listener)])
        #expect(l.records.first?.stateName == "listening")
        for p in mine.pairs { #expect(Sock.exchanges(p.client, p.server)) }
    }

    @Test func isSupportedAndProbeDestroysOnlyItsOwnSocket() throws {
        #expect(throws: Never.self) { try BPFSocketDestroyer.isSupported().get() }
        let ns = try TestNetns()
        defer { ns.remove() }
        let g = try ns.run { try openGroup("127.0.0.1", 5701, count: 2, v6: false) }
        defer { g.closeAll() }
        let d = try destroyer()
        try ns.run { try d.probe() }
        for p in g.pairs { #expect(Sock.exchanges(p.client, p.server)) }
    }

    @Test func timeWaitIsReportedNotDestroyable() throws {
        let ns = try TestNetns()
        defer { ns.remove() }
        let g = try ns.run { try openGroup("127.0.0.1", 5501, count: 1, v6: false) }
        defer { close(g.listener) }                  // both ends are closed below, exactly once
        close(g.pairs[0].client)                     // active close: the client side ends in TIME_WAIT
        var buf: UInt8 = 0
        _ = recv(g.pairs[0].server, &buf, 1, 0)      // sees EOF
        close(g.pairs[0].server)
        usleep(100_000)
        let d = try destroyer()
        let r = try ns.run { try d.destroy(BPFDestroySpec(clauses: [.init(destinationPorts: 5501...5501, states: [6])], protocols: [.tcp])) }
        #expect(r.records.count == 1)
        #expect(r.records.first?.outcome == .notDestroyable)
        #expect(r.records.first?.stateName == "time-wait")
        #expect(r.counts.notDestroyable == 1 && r.counts.failed == 0)
    }
}

@Suite("BPF shards (root, network namespaces)")
struct BPFShardTests {
    /// Two half passes (cookie % 2 == 0 and == 1), each on a destroyer of its own and on a thread
    /// of its own at the same time, destroy exactly what one whole pass would: every matching
    /// socket once, none twice, the spared ones untouched.
    @Test func twoConcurrentHalfPassesCoverTheSetOnce() throws {
        let ns = try TestNetns()
        defer { ns.remove() }
        let (hit, spared) = try ns.run { (try openGroup("127.0.0.1", 5101, count: 40, v6: false), try openGroup("127.0.0.1", 5102, count: 5, v6: false)) }
        defer { hit.closeAll(); spared.closeAll() }
        let whole = BPFDestroySpec(clauses: [.init(family: .ipv4, sourcePorts: 5101...5101)], protocols: [.tcp])
        let preview = try ns.run { try destroyer().destroy({ var s = whole; s.dryRun = true; return s }()) }
        let expected = Set(preview.records.map(\.cookie))
        #expect(expected == hit.serverCookies.union([Sock.cookie(hit.listener)]))

        let second = try BPFSocketDestroyer()
        var odd = whole
        odd.shard = (1, 2)
        var even = whole
        even.shard = (0, 2)
        let other = try ns.run { () -> Thread.Outcome in
            // Started here, so the helper thread is in the namespace as well.
            let t = Thread.Outcome { try second.destroy(odd) }
            return t
        }
        let mine = try ns.run { try destroyer().destroy(even) }
        let theirs = try other.wait()
        #expect(mine.records.allSatisfy { $0.cookie % 2 == 0 } && theirs.records.allSatisfy { $0.cookie % 2 == 1 })
        let all = (mine.records + theirs.records).map(\.cookie)
        #expect(Set(all).count == all.count, "a socket was destroyed by both halves")
        #expect(Set(all) == expected)
        #expect((mine.records + theirs.records).allSatisfy { $0.outcome == .destroyed })
        for p in spared.pairs { #expect(Sock.exchanges(p.client, p.server)) }
        var bad = whole
        bad.shard = (2, 2)
        #expect(throws: BPFError.self) { try destroyer().destroy(bad) }
    }
}

extension Thread {
    /// A destroy on a thread of its own; `wait()` gives its result.
    final class Outcome: @unchecked Sendable {
        private let condition = NSCondition()
        private var result: Result<BPFDestroyResult, Error>?
        init(_ work: @escaping () throws -> BPFDestroyResult) {
            Thread { [self] in
                let r = Result { try work() }
                condition.lock(); result = r; condition.broadcast(); condition.unlock()
            }.start()
        }
        func wait() throws -> BPFDestroyResult {
            condition.lock(); defer { condition.unlock() }
            while result == nil { condition.wait() }
            return try result!.get()
        }
    }
}
