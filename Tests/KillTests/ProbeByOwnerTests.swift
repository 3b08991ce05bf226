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
