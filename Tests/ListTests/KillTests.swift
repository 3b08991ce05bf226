import Foundation
import TestSupport
import Testing

/// `sockctl kill` in a namespace of its own: exactly the matching sockets die, owners see
/// ECONNABORTED, TCP peers see ECONNRESET, everything else keeps moving data.
@Suite struct KillTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("kill_fixture.py").path

    final class Fixture {
        let holder: Holder
        let output: FileHandle
        init(_ ns: TestNamespace) throws {
            holder = try Holder(["ip", "netns", "exec", ns.name, "python3", KillTests.fixture])
            output = holder.output.fileHandleForReading
        }
        /// Asks the fixture to probe every socket; returns name -> result.
        func probe() throws -> [String: String] {
            holder.input.fileHandleForWriting.write(Data("probe\n".utf8))
            var line = Data()
            while let b = try output.read(upToCount: 1), !b.isEmpty, b.first != 10 { line.append(b) }
            return try #require(try JSONSerialization.jsonObject(with: line) as? [String: String])
        }
    }

    func kill(_ ns: TestNamespace, _ args: [String]) -> (status: Int32, out: String) {
        sh([sockctlBinary, "kill", "--netns", ns.name] + args)
    }

    @Test(arguments: ["netlink", "bpf"]) func killsExactlyTheMatchingSockets(backend: String) throws {
        let ns = try TestNamespace("kill")
        let fx = try Fixture(ns)
        let before = try fx.probe()
        #expect(before.values.allSatisfy { $0 == "ok" }, "fixture not healthy: \(before)")

        // Refusals destroy nothing.
        #expect(kill(ns, []).status == 2)
        #expect(kill(ns, ["--max", "1", "dport = :7101"]).status == 2)
        let dry = kill(ns, ["--backend", backend, "--dry-run", "--json", "-tu", "dport = :7101"])
        #expect(dry.status == 0)
        let dryLines = try jsonLines(dry.out)
        #expect(dryLines.count == 4 && dryLines.allSatisfy { $0["outcome"] as? String == "would-destroy" })
        #expect(try fx.probe().values.allSatisfy { $0 == "ok" }, "dry run destroyed something")

        // pid/comm terms are decided on the processes holding each socket.
        #expect(kill(ns, ["comm sockctl-nobody-has-this"]).status == 1)
        let byComm = kill(ns, ["--dry-run", "--json", "-tu", "comm python3 and dport = :7102"])
        #expect(try jsonLines(byComm.out).count == 4)
        // `ip netns exec` execs python in place: the holder's pid owns the sockets; ours owns none.
        #expect(try jsonLines(kill(ns, ["--dry-run", "--json", "-tu", "pid \(fx.holder.pid) and dport = :7102"]).out).count == 4)
        #expect(kill(ns, ["--dry-run", "-tu", "pid \(getpid()) and dport = :7102"]).status == 1)

        // The real kill: TCP and connected UDP clients of port 7101, IPv4 and IPv6.
        let r = kill(ns, ["--backend", backend, "--json", "-tu", "dport = :7101"])
        #expect(r.status == 0)
        let killed = try jsonLines(r.out)
        #expect(killed.count == 4)
        #expect(killed.allSatisfy { $0["outcome"] as? String == "destroyed" && $0["dport"] as? Int == 7101 })

        let after = try fx.probe()
        for v in ["4", "6"] {
            #expect(after["tcp\(v)-7101-client"] == "ECONNABORTED")
            #expect(after["tcp\(v)-7101-server"] == "ECONNRESET")
            #expect(after["udp\(v)-7101-client"] == "ECONNABORTED")
            for name in ["tcp\(v)-7102-client", "tcp\(v)-7102-server", "udp\(v)-7102-client", "tcp\(v)-7101-listener", "tcp\(v)-7102-listener"] {
                #expect(after[name] == "ok", "\(name) was hit: \(after[name] ?? "-")")
            }
        }
        // The killed TCP sockets are gone from the namespace (a destroyed UDP socket stays, disconnected);
        // listed with -N, the short form ss users type.
        let listed = sh([sockctlBinary, "list", "-N", ns.name, "-tuaH", "--json"])
        #expect(listed.status == 0)
        let left = try jsonLines(listed.out)
        #expect(left.contains { $0["sport"] as? Int == 7102 }, "the bystanders are listed")
        let gone = Set(killed.filter { $0["protocol"] as? String == "tcp" }.compactMap { $0["cookie"] as? Int })
        #expect(gone.count == 2)
        #expect(left.allSatisfy { !gone.contains($0["cookie"] as? Int ?? -1) })
        // Nothing matches any more.
        #expect(kill(ns, ["--backend", backend, "-u", "dport = :7101"]).status == 1)
    }

    /// -v names the backend and why: auto stays on netlink in a one-shot command (the programs are
    /// not loaded); bpf when forced. It also says how destroy support was probed (not at all in a
    /// dry run).
    @Test func autoSaysWhichBackend() throws {
        let ns = try TestNamespace("auto")
        let fx = try Fixture(ns)
        func stderr(_ args: [String]) throws -> (Int32, String) {
            let r = runCommand([sockctlBinary, "kill", "--netns", ns.name, "-v", "--dry-run", "-t"] + args)
            return (r.status, r.stderr)
        }
        let auto = try stderr(["dport = :7101"])
        #expect(auto.0 == 0 && auto.1.contains("backend netlink") && auto.1.contains("not loaded in this process"), "\(auto.1)")
        #expect(auto.1.contains("destroy probe: none (dry run)"), "\(auto.1)")
        let forced = try stderr(["--backend", "bpf", "dport = :7101"])
        #expect(forced.0 == 0 && forced.1.contains("backend bpf"), "\(forced.1)")
        let untranslatable = try stderr(["--backend", "bpf", "dport = :7101 and fwmark 0x1"])
        #expect(untranslatable.0 == 2 && untranslatable.1.contains("fwmark"), "\(untranslatable.1)")
        #expect(try fx.probe().values.allSatisfy { $0 == "ok" })
        // A real kill says which probe ran: forced BPF probes the kfunc in the target namespace as
        // the backend is chosen; netlink, as root, destroys one socket in sockctl's own namespace.
        let bpf = runCommand([sockctlBinary, "kill", "-N", ns.name, "-v", "--backend", "bpf", "-t", "dport = :7101 and src 127.0.0.1"])
        #expect(bpf.status == 0 && bpf.stderr.contains("destroy probe: bpf_sock_destroy on one socket of our own in netns \(ns.name)"), "\(bpf.stderr)")
        let netlink = runCommand([sockctlBinary, "kill", "-N", ns.name, "-v", "--backend", "netlink", "-t", "dport = :7101"])
        #expect(netlink.status == 0 && netlink.stderr.contains("destroy probe: one socket of our own destroyed in sockctl's namespace"), "\(netlink.stderr)")
    }
}
