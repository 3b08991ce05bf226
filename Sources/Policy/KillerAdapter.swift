import Kill
import SockDiag

/// The daemon's kills through the `Kill` library's `SocketKiller` (cookie-exact destroys, per-socket
/// outcomes, `max` refused before anything is destroyed).
struct SocketKillerAdapter: SocketKilling {
    let killer = SocketKiller()

    func kill(_ order: KillOrder) throws -> [KilledSocket] {
        let request = KillRequest(filter: order.filter, namespaces: order.namespaces.map { .list($0) } ?? .current,
                                  all: true, dryRun: order.dryRun, max: order.max)
        let report: KillReport
        do {
            report = try killer.kill(request)
        } catch KillError.tooManyMatches(let n, let m) {
            throw KillFailure.tooMany(matched: n, max: m)
        }
        // A namespace that could not be worked on (it vanished, no permission) is reported, not hidden.
        if report.results.isEmpty, let failed = report.summary.namespaces.first(where: { $0.error != nil }) {
            throw KillFailure.namespace(failed.netns ?? order.currentLabel, NamespaceFailure(failed.error ?? ""))
        }
        return report.results.map { r in
            var errno: Int32?
            if case .failed(let e, _) = r.outcome { errno = e }
            return KilledSocket(socket: r.socket, netns: r.netns ?? order.currentLabel, outcome: r.outcome.name, errno: errno)
        }
    }
}

struct NamespaceFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
