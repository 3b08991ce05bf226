import Foundation
import TestSupport
import Testing

/// Without CAP_NET_ADMIN in the socket's namespace (here: a user namespace of our own inside a test
/// network namespace owned by the init user namespace) kill exits 3, says why, and destroys nothing.
@Suite struct KillPermissionTests {
    @Test func noNetAdminExits3WithTheReason() throws {
        let ns = try TestNamespace("perm")
        let holder = try Holder(["ip", "netns", "exec", ns.name, "python3", "-c", """
        import socket, sys
        l = socket.socket(); l.bind(('127.0.0.1', 7501)); l.listen()
        c = socket.create_connection(('127.0.0.1', 7501)); a, _ = l.accept()
        print('READY', flush=True); sys.stdin.read()
        """])
        defer { _ = holder }
        let r = runCommand(["ip", "netns", "exec", ns.name, "unshare", "-U", "-r", sockctlBinary, "kill", "-t", "dport = :7501"])
        let text = r.stderr
        #expect(r.status == 3)
        #expect(text.contains("needs CAP_NET_ADMIN in the socket's network namespace"), "stderr: \(text)")
        let left = ns.exec(["ss", "-tnH", "state", "established"]).stdout.split(separator: "\n")
        #expect(left.count == 2, "a socket was destroyed without permission")
    }
}
