import Foundation
import TestSupport
import Testing

/// One `kill` over 20 namespaces destroys the matching sockets in each and nothing else.
@Suite struct ManyNamespacesKillTests {
    @Test func killAcrossTwentyNamespaces() throws {
        let spaces = try (0..<20).map { _ in try TestNamespace("kill20") }
        let holder = """
        import socket, sys
        keep = []
        for port in (7401, 7402):
            l = socket.socket(); l.bind(('127.0.0.1', port)); l.listen(); keep.append(l)
            c = socket.create_connection(('127.0.0.1', port)); a, _ = l.accept(); keep += [c, a]
        print('READY', flush=True); sys.stdin.read()
        """
        let holders = try spaces.map { try Holder(["ip", "netns", "exec", $0.name, "python3", "-c", holder]) }
        defer { _ = holders }

        let args = spaces.flatMap { ["--netns", $0.name] }
        let r = sh([sockctlBinary, "kill", "--json", "-t"] + args + ["dport = :7401"])
        #expect(r.status == 0)
        let killed = try jsonLines(r.out)
        #expect(killed.count == 20)
        #expect(Set(killed.compactMap { $0["netns"] as? String }) == Set(spaces.map(\.name)))

        let after = try jsonLines(sh([sockctlBinary, "list", "--json", "-H", "-ta"] + args).out)
        for ns in spaces {
            let here = after.filter { $0["netns"] as? String == ns.name && $0["state"] as? String == "established" }
            // Port 7402's pair is untouched; port 7401's client is gone (its server end was reset).
            #expect(here.filter { $0["dport"] as? Int == 7402 || $0["sport"] as? Int == 7402 }.count == 2, "\(ns.name)")
            #expect(here.filter { $0["dport"] as? Int == 7401 || $0["sport"] as? Int == 7401 }.isEmpty, "\(ns.name)")
        }

        // The summary names the namespaces where something happened and counts the quiet ones.
        let some = runCommand([sockctlBinary, "kill", "-t"] + args + ["dport = :7402"])
        #expect(some.status == 0)
        let summary = some.stdout.split(separator: "\n").last.map(String.init) ?? ""
        #expect(summary == "20 sockets matched; " + spaces.map { "netns \($0.name): 1 destroyed" }.joined(separator: "; "))
        let none = runCommand([sockctlBinary, "kill", "-t"] + args + ["dport = :7401"])
        #expect(none.status == 1)
        #expect(none.stdout.hasSuffix("0 sockets matched; nothing matched in 20 namespaces\n"))
        // One namespace's listener, by cookie: the other 19 are counted.
        let listener = try #require(after.first { $0["netns"] as? String == spaces[0].name && $0["state"] as? String == "listening" })
        let cookie = try #require(listener["cookie"] as? UInt64)
        let one = runCommand([sockctlBinary, "kill", "-t", "-a"] + args + ["cookie \(cookie)"])
        #expect(one.status == 0)
        #expect(one.stdout.hasSuffix("1 sockets matched; netns \(spaces[0].name): 1 destroyed; nothing matched in 19 other namespaces\n"), "\(one.stdout)")
    }

    /// A filter is compiled once for all namespaces only when it compiles alike in each: `dev NAME`
    /// is resolved per namespace, where the same name has another interface index.
    @Test func deviceNamesResolveInEachNamespace() throws {
        let spaces = try (0..<2).map { _ in try TestNamespace("kill-dev") }
        defer { spaces.forEach { $0.remove() } }
        // In the first namespace d0 comes after another interface, so its index differs.
        try runChecked(["ip", "-n", spaces[0].name, "link", "add", "pad0", "type", "veth", "peer", "name", "pad1"])
        for ns in spaces { try runChecked(["ip", "-n", ns.name, "link", "add", "d0", "type", "veth", "peer", "name", "d0p"]) }
        let index = spaces.map { ns in ns.exec(["cat", "/sys/class/net/d0/ifindex"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(index[0] != index[1])
        let holder = """
        import socket, sys
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'd0'); s.bind(('0.0.0.0', 7701))
        t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); t.bind(('0.0.0.0', 7702))
        print('READY', flush=True); sys.stdin.read()
        """
        let holders = try spaces.map { try Holder(["ip", "netns", "exec", $0.name, "python3", "-c", holder]) }
        defer { _ = holders }
        let args = spaces.flatMap { ["-N", $0.name] }

        let listed = sh([sockctlBinary, "list", "--json", "-H", "-u", "-a"] + args + ["dev d0"])
        #expect(listed.status == 0)
        let found = try jsonLines(listed.out)
        #expect(found.map { $0["netns"] as? String } == spaces.map(\.name), "\(listed.out)")
        #expect(found.allSatisfy { $0["sport"] as? Int == 7701 && $0["iface"] as? String == "d0" })

        let dry = sh([sockctlBinary, "kill", "--dry-run", "--json", "-u"] + args + ["dev d0"])
        #expect(dry.status == 0)
        let would = try jsonLines(dry.out)
        #expect(would.map { $0["netns"] as? String } == spaces.map(\.name), "\(dry.out)")
        #expect(would.allSatisfy { $0["sport"] as? Int == 7701 && $0["outcome"] as? String == "would-destroy" })
    }
}
