import Namespaces
import SockDiag
import SocketFilter
#if canImport(Glibc)
import Glibc
#endif

/// Stand-in until the `Kill` library's `SocketKiller` is merged: select by filter, destroy by cookie.
struct InterimKiller: SocketKilling {
    func kill(_ order: KillOrder) throws -> [KilledSocket] {
        guard let spaces = order.namespaces else {
            let found = try select(order.filter)
            if let m = order.max, found.count > m { throw KillFailure.tooMany(matched: found.count, max: m) }
            return try destroy(found, order: order, label: order.currentLabel)
        }
        let selected = NamespaceRunner.map(spaces) { _ in try select(order.filter) }
        var found: [[Socket]] = []
        for (ns, r) in zip(spaces, selected) {
            do { found.append(try r.get()) } catch { throw KillFailure.namespace(ns.label, error) }
        }
        let total = found.reduce(0) { $0 + $1.count }
        if let m = order.max, total > m { throw KillFailure.tooMany(matched: total, max: m) }
        let byNamespace = Dictionary(uniqueKeysWithValues: zip(spaces.map(\.identity), found))
        var results: [KilledSocket] = []
        for (ns, r) in zip(spaces, NamespaceRunner.map(spaces) { ns in try destroy(byNamespace[ns.identity]!, order: order, label: ns.label) }) {
            do { results += try r.get() } catch { throw KillFailure.namespace(ns.label, error) }
        }
        return results
    }

    private func select(_ f: SocketFilter) throws -> [Socket] {
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

    private func destroy(_ socks: [Socket], order: KillOrder, label: String) throws -> [KilledSocket] {
        let outcomes: [DestroyOutcome] = order.dryRun ? socks.map { _ in .wouldDestroy }
            : try SockDiagClient.destroy(socks, on: try SockDiagClient.openSocket())
        return zip(socks, outcomes).map { s, o in
            var e: Int32?
            if case .failed(let n) = o { e = n }
            return KilledSocket(socket: s, netns: label, outcome: o.name, errno: e)
        }
    }
}
