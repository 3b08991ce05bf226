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
    }
}
