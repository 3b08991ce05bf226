import Foundation
import TestSupport
import Testing

/// `sockctl` holds list, kill, watch and netns; for run, upgrade, status, fd, syn and daemon it
/// execs `sockctl-full` from its own directory (SockCtlCLIBase/Verbs.swift).
@Suite struct VerbForwardingTests {
    @Test func helpListsEveryVerb() {
        let r = runCommand([sockctlBinary, "--help"])
        #expect(r.status == 0)
        for verb in ["list", "kill", "watch", "run", "upgrade", "status", "fd", "syn", "daemon", "netns"] {
            #expect(r.stdout.contains("\n  \(verb) "), "sockctl --help lists \(verb)")
        }
    }

    /// A forwarded verb gets its full help and its exit statuses from sockctl-full.
    @Test func forwardedVerbsAnswerWithTheirOwnOptions() throws {
        let help = runCommand([sockctlBinary, "daemon", "--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("--config"), "daemon --help shows the daemon's options")
        let viaHelp = runCommand([sockctlBinary, "help", "syn"])
        #expect(viaHelp.status == 0 && viaHelp.stdout.contains("USAGE: sockctl syn"))
        let dir = NSTemporaryDirectory() + "sockctl-forward-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bad = dir + "/policy.yaml"
        try "rules:\n  - name: x\n    on: nowhere\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let check = runCommand([sockctlBinary, "daemon", "--check", bad])
        #expect(check.status == 2, "a bad policy is a usage error (2), reported by sockctl-full: \(check.stderr)")
        #expect(check.stderr.contains("policy.yaml:3"), "the error names the file and line: \(check.stderr)")
    }

    /// Without sockctl-full beside it, sockctl says what is missing and where, and exits 4; its own
    /// verbs still work.
    @Test func missingFullBinaryIsNamed() throws {
        let dir = NSTemporaryDirectory() + "sockctl-alone-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let alone = dir + "/sockctl"
        try FileManager.default.copyItem(atPath: sockctlBinary, toPath: alone)
        let r = runCommand([alone, "status", "web"])
        #expect(r.status == 4)
        #expect(r.stderr.contains("sockctl-full") && r.stderr.contains(dir + "/sockctl-full"), "\(r.stderr)")
        let own = runCommand([alone, "kill", "--help"])
        #expect(own.status == 0 && own.stdout.contains("USAGE: sockctl kill"))
    }
}
