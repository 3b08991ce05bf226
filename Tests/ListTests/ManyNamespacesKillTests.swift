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
}
