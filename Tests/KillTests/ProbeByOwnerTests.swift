import Foundation
import Glibc
@testable import Kill
import Namespaces
import TestSupport
import Testing

/// Destroy permission is decided by the user namespace that owns a network namespace, so an
/// all-namespaces kill probes once per owner, not once per namespace; a namespace that vanished
/// before its group's probe does not leave the rest of its group unprobed.
@Suite struct ProbeByOwnerTests {
    /// A network namespace owned by a user namespace of its own (`unshare -U -n`), named with
    /// `ip netns attach` so that it can be resolved like the others.
    final class ChildOwned {
        let name = "sockctl-t-owned-\(TestNamespace.uniqueSuffix())"
        let holder: Holder
        init() throws {
            holder = try Holder(["unshare", "-U", "-n", "--map-root-user", "sh", "-c", "echo READY; exec cat"])
            try runChecked(["ip", "netns", "attach", name, "\(holder.process.processIdentifier)"])
        }
        deinit { _ = runCommand(["ip", "netns", "delete", name]) }
    }

    @Test func oneProbePerOwningUserNamespace() throws {
        let plain = try (0..<3).map { _ in try TestNamespace("probe") }
        defer { plain.forEach { $0.remove() } }
        let owned = try (0..<2).map { _ in try ChildOwned() }
        let resolver = NamespaceResolver()
        let spaces = try plain.map { try resolver.resolve($0.name) } + owned.map { try resolver.resolve($0.name) }
        #expect(Set(spaces.compactMap { $0.ownerUserNamespace() }).count == 3, "init + two child user namespaces")

        let probed = NSLock()
        nonisolated(unsafe) var labels: [String] = []
        var skipped: [NetworkNamespace: String] = [:]
        let usable = try SocketKiller.probeByOwner(spaces, skipped: &skipped, parallelism: 2) { label in
            probed.lock(); labels.append(label ?? "-"); probed.unlock()
            try SocketKiller.probe(label: label)
        }
        #expect(usable == spaces)
        #expect(skipped.isEmpty)
        // The three plain namespaces share the init user namespace: one probe for them.
        #expect(labels.count == 3, "probed: \(labels)")
        #expect(labels.filter { $0.contains("-probe-") }.count == 1)
    }

    @Test func aVanishedRepresentativeLeavesTheRestOfItsGroupProbed() throws {
        let plain = try (0..<3).map { _ in try TestNamespace("probe") }
        defer { plain.forEach { $0.remove() } }
        let resolver = NamespaceResolver()
        let spaces = try plain.map { try resolver.resolve($0.name) }
        plain[0].remove()  // gone before the kill: its probe fails with .vanished
        nonisolated(unsafe) var labels: [String] = []
        let probed = NSLock()
        var skipped: [NetworkNamespace: String] = [:]
        let usable = try SocketKiller.probeByOwner(spaces, skipped: &skipped, parallelism: 2) { label in
            probed.lock(); labels.append(label ?? "-"); probed.unlock()
            try SocketKiller.probe(label: label)
        }
        #expect(usable == Array(spaces.dropFirst()))
        #expect(skipped.keys.map(\.label) == [spaces[0].label])
        #expect(labels.count == 1, "the vanished one has no owner to group by; the other two share one probe: \(labels)")
    }
}

/// The tests run as root in the initial user namespace, which holds CAP_NET_ADMIN over every
/// namespace's sockets whoever owns the namespace: the kill then probes once, in its own
/// namespace, instead of once per owner. That must still reach a namespace owned by a child user
/// namespace, and a namespace that is gone by the time of the kill is reported, not fatal.
@Suite struct OneProbeForAllTests {
    @Test func rootInTheInitialUserNamespaceKillsEverywhere() throws {
        #expect(NetworkNamespace.callerHasNetAdminEverywhere())
        let plain = try TestNamespace("probe")
        defer { plain.remove() }
        let gone = try TestNamespace("probe")
        defer { gone.remove() }
        let owned = try ProbeByOwnerTests.ChildOwned()
        try runChecked(["ip", "-n", owned.name, "link", "set", "lo", "up"])
        let resolver = NamespaceResolver()
        let live = [try resolver.resolve(plain.name), try resolver.resolve(owned.name)]
        #expect(live[0].ownerUserNamespace() != live[1].ownerUserNamespace(), "one of them is owned by a child user namespace")
        let vanished = try resolver.resolve(gone.name)

        // Per live namespace: a target pair on 7211 and a bystander pair on 7212.
        let made = try live.map { ns in
            try NamespaceRunner.run(in: ns) { () throws -> [(client: Int32, server: Int32)] in
                try [7211, 7212].map { port in
                    let l = try Sock.listener("127.0.0.1", UInt16(port), v6: false)
                    defer { close(l) }
                    return try Sock.pair(listener: l, "127.0.0.1", UInt16(port), v6: false)
                }
            }
        }
        defer { for p in made.joined() { close(p.client); close(p.server) } }
        gone.remove()

        let spaces = [live[0], vanished, live[1]]
        let report = try SocketKiller().kill(KillRequest(filter: "dport = :7211", protocols: [.tcp], namespaces: .list(spaces)))
        #expect(report.summary.probe.contains("initial user namespace"), "\(report.summary.probe)")
        #expect(report.results.count == 2)
        #expect(report.results.allSatisfy { $0.outcome == .destroyed })
        #expect(report.summary.namespaces.map(\.destroyed) == [1, 0, 1])
        #expect(report.summary.namespaces[1].error != nil, "the vanished namespace is reported")
        #expect(report.summary.namespaces[0].error == nil && report.summary.namespaces[2].error == nil)
        for pairs in made {
            #expect(Sock.recvErrno(pairs[0].client) == ECONNABORTED)
            #expect(Sock.recvErrno(pairs[0].server) == ECONNRESET)
            #expect(Sock.exchanges(pairs[1].client, pairs[1].server) && Sock.exchanges(pairs[1].server, pairs[1].client))
        }
    }
}
