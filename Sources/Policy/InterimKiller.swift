import Namespaces
import SockDiag
import SocketFilter
#if canImport(Glibc)
import Glibc
#endif

/// Stand-in until the `Kill` library's `SocketKiller` is merged: select by filter, destroy by cookie.
struct InterimKiller: SocketKilling {
    func kill(_ order: KillOrder) throws -> [KilledSocket] {
        let f = order.filter
        let selected = NamespaceRunner.map(order.namespaces) { ns -> [Socket] in
            let client = try SockDiagClient()
            var out: [Socket] = []
            for fam in [UInt8(AF_INET), UInt8(AF_INET6)] {
                let c = try f.compile(family: fam, context: .system)
                if c.matchesNothing { continue }
                for kind in [SocketKind.tcp, .udp] {
                    var q = DumpQuery(kinds: [kind], families: [fam], states: f.stateMask ?? (SocketState.allMask & ~SocketState.timeWait.mask))
                    q.bytecode[fam] = c.bytecode
                    try client.dump(q) { s in if c.matches(s) { out.append(s) } }
                }
            }
            return out
        }
        var found: [[Socket]] = []
        for (ns, r) in zip(order.namespaces, selected) {
            do { found.append(try r.get()) } catch { throw KillFailure.namespace(ns.label, error) }
        }
        let total = found.reduce(0) { $0 + $1.count }
        if let m = order.max, total > m { throw KillFailure.tooMany(matched: total, max: m) }
        var results: [KilledSocket] = []
        let work = Array(zip(order.namespaces, found))
        let outcomes = NamespaceRunner.map(work.map { $0.0 }) { ns -> [DestroyOutcome] in
            let socks = work.first { $0.0 == ns }!.1
            if order.dryRun { return socks.map { _ in .wouldDestroy } }
            return try SockDiagClient.destroy(socks, on: try SockDiagClient.openSocket())
        }
        for ((ns, socks), r) in zip(work, outcomes) {
            let o = try r.get()
            for (s, x) in zip(socks, o) {
                var e: Int32?
                if case .failed(let n) = x { e = n }
                results.append(KilledSocket(socket: s, netns: ns.label, outcome: x.name, errno: e))
            }
        }
        return results
    }
}
