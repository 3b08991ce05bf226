import Foundation
import TestSupport
import Testing

/// Without CAP_NET_ADMIN over the socket's namespace kill exits 3, says why, and destroys nothing.
@Suite struct KillPermissionTests {
    /// One established loopback pair on `port` in `ns`, held until the holder goes away.
    static func pair(in ns: TestNamespace, port: Int) throws -> Holder {
        try Holder(["ip", "netns", "exec", ns.name, "python3", "-c", """
        import socket, sys
        l = socket.socket(); l.bind(('127.0.0.1', \(port))); l.listen()
        c = socket.create_connection(('127.0.0.1', \(port))); a, _ = l.accept()
        print('READY', flush=True); sys.stdin.read()
        """])
    }

    /// The refusal the user must see, and both ends of every pair still there.
    static func expectRefused(_ r: CommandResult, _ spaces: [TestNamespace]) {
        #expect(r.status == 3, "stderr: \(r.stderr)")
        #expect(r.stderr.contains("needs CAP_NET_ADMIN in the socket's network namespace"), "stderr: \(r.stderr)")
        for ns in spaces {
            #expect(ns.exec(["ss", "-tnH", "state", "established"]).stdout.split(separator: "\n").count == 2,
                    "a socket was destroyed without permission in \(ns.name)")
        }
    }

    /// A user namespace of our own inside a test network namespace owned by the init user namespace.
    @Test func noNetAdminExits3WithTheReason() throws {
        let ns = try TestNamespace("perm")
        let holder = try Self.pair(in: ns, port: 7501)
        defer { _ = holder }
        let r = runCommand(["ip", "netns", "exec", ns.name, "unshare", "-U", "-r", sockctlBinary, "kill", "-t", "dport = :7501"])
        Self.expectRefused(r, [ns])
    }

    /// Root without CAP_NET_ADMIN (dropped from the bounding set, so exec gives none), over several
    /// namespaces: no shortcut through the initial user namespace, each owner's probe fails, exit 3.
    @Test func rootWithoutNetAdminExits3OverSeveralNamespaces() throws {
        let spaces = try (0..<2).map { _ in try TestNamespace("perm") }
        let holders = try spaces.map { try Self.pair(in: $0, port: 7502) }
        defer { _ = holders }
        let r = runCommand(["setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin", sockctlBinary, "kill", "-t"]
                           + spaces.flatMap { ["--netns", $0.name] } + ["dport = :7502"])
        Self.expectRefused(r, spaces)
    }
}
