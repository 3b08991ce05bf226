import Foundation
import TestSupport
import Testing

/// `sockctl netns`: every namespace --all-netns covers, labelled as list/kill print them, with the
/// owning user namespace and the TCP/UDP sockets each holds; arguments are resolved like --netns.
@Suite struct NetnsCommandTests {
    func rows(_ r: CommandResult) throws -> [String: [String: Any]] {
        var out: [String: [String: Any]] = [:]
        for line in r.stdout.split(separator: "\n") {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            out[try #require(o["netns"] as? String)] = o
        }
        return out
    }

    @Test func showsNamedAndChildOwnedNamespacesWithTheirSockets() throws {
        let ns = try TestNamespace("nsls")
        defer { ns.remove() }
        let holder = try Holder(["ip", "netns", "exec", ns.name, "python3", "-c", """
        import socket, sys
        l = socket.socket(); l.bind(('127.0.0.1', 7601)); l.listen()
        pairs = [(socket.create_connection(('127.0.0.1', 7601)), l.accept()[0]) for _ in range(3)]
        u = [socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) for _ in range(2)]
        for s in u: s.bind(('::1', 0))
        print('READY', flush=True); sys.stdin.read()
        """])
        defer { _ = holder }
        // A namespace owned by a user namespace of its own, held only by a process (no name).
        let owned = try Holder(["unshare", "-U", "-n", "--map-root-user", "sh", "-c", "echo READY; exec cat"])
        let ownedPid = owned.process.processIdentifier
        defer { _ = owned }
        var st = stat()
        #expect(stat("/proc/\(ownedPid)/ns/net", &st) == 0)
        let ownedInode = UInt64(st.st_ino)
        #expect(stat("/proc/\(ownedPid)/ns/user", &st) == 0)
        let ownedUser = UInt64(st.st_ino)

        let all = runCommand([sockctlBinary, "netns", "--json"])
        #expect(all.status == 0, "\(all.stderr)")
        let byLabel = try rows(all)
        let named = try #require(byLabel[ns.name])
        #expect(named["tcp"] as? Int == 7, "listener + 3 pairs: \(named)")
        #expect(named["udp"] as? Int == 2)
        #expect(named["owner_is_init"] as? Bool == true)
        #expect(named["host"] as? Bool == false)
        #expect((named["paths"] as? [String])?.first == "/run/netns/\(ns.name)")
        let child = try #require(byLabel["ino:\(ownedInode)"])
        #expect(child["owner_userns"] as? UInt64 == ownedUser)
        #expect(child["owner_is_init"] as? Bool == false)
        #expect(child["tcp"] as? Int == 0)
        #expect(byLabel.values.filter { $0["host"] as? Bool == true }.count == 1)

        // By PID and by name, as --netns resolves them; the table has the same labels.
        let some = runCommand([sockctlBinary, "netns", "\(ownedPid)", ns.name])
        #expect(some.status == 0)
        let lines = some.stdout.split(separator: "\n")
        #expect(lines.count == 3 && lines[0].hasPrefix("NETNS"))
        #expect(lines[1].hasPrefix("ino:\(ownedInode) ") && lines[1].contains("user:[\(ownedUser)]"))
        #expect(lines[2].hasPrefix(ns.name + " ") && lines[2].contains(" init "))
    }

    @Test func anUnknownNamespaceIsAUsageError() {
        let r = runCommand([sockctlBinary, "netns", "sockctl-t-no-such-netns"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("no network namespace named 'sockctl-t-no-such-netns'"))
        #expect(r.stdout.isEmpty)
    }
}
