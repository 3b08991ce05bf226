import Foundation
import Testing
import Handoff
#if canImport(Glibc)
import Glibc
#endif

/// What scripts/handoff-test-server.py reports about the fds it inherited.
struct InheritReport: Decodable {
    struct FD: Decodable { var fd: Int32; var name: String; var family: String; var type: String; var cloexec: Bool; var listening: Bool; var reuseport: Bool }
    struct State: Decodable { var count: Int; var inode: UInt64 }
    var pid: Int32
    var state: State?
    var env: [String: String]
    var open_above: [Int32]
    var fds: [FD]
}

/// `sockctl run` of the protocol-only Python server (scripts/handoff-test-server.py) in a namespace.
final class PySupervised {
    let ns: TestNamespace
    let process: Process
    var name: String { ns.name }
    let log: String

    init(_ ns: TestNamespace, name: String? = nil, listen: [String], ready: String, readyTimeout: String = "3s",
         drainTimeout: String = "3s", runArgs: [String] = [], serverArgs: [String] = [], launcher: [String] = [],
         waitActive: Bool = true) throws {
        self.ns = ns
        let n = name ?? ns.name
        log = "/tmp/\(n).log"
        process = try ns.spawn(launcher + [sockctlBin, "run", "--name", n] + listen.flatMap { ["--listen", $0] } +
                               ["--ready", ready, "--ready-timeout", readyTimeout, "--drain-timeout", drainTimeout] + runArgs + ["--",
                                "python3", testServer] + serverArgs, log: log)
        if waitActive {
            guard waitFor(10, { (try? self.status(n))?.generations.contains { $0.state == "active" } ?? false }) else {
                throw TestFailure("supervisor did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            }
        }
    }

    func status(_ n: String) throws -> SupervisorStatus {
        try JSONDecoder().decode(SupervisorStatus.self, from: Data(try ns.run([sockctlBin, "status", n, "--json"]).out.utf8))
    }

    func stop() {
        kill(process.processIdentifier, SIGTERM)
        _ = waitFor(5) { !process.isRunning }
    }
}

@Suite struct ListenerKindsTests {
    /// tcp (reuseport, backlog 77), udp and a unix stream path (mode 0600) under `sockctl run`: the
    /// child finds them as fds 3, 4, 5 named per LISTEN_FDNAMES with LISTEN_PID its own pid, only
    /// those without close-on-exec and nothing else open above them (not even fd 9, which the
    /// supervisor itself inherited without close-on-exec). Three upgrades by SIGHUP to the
    /// supervisor under load on all three: no failed TCP connection or request, no lost datagram,
    /// no failed unix connection; several generations answered datagrams on the one UDP socket.
    @Test func everyListenerKindSurvivesSighupUpgrades() throws {
        let ns = try TestNamespace("kinds")
        defer { ns.delete() }
        let report = "/tmp/\(ns.name).report"
        let unixPath = "/tmp/\(ns.name).sock"
        let sup = try PySupervised(ns, listen: ["tcp://127.0.0.1:8080?reuseport=1&backlog=77", "udp://127.0.0.1:5353",
                                                "unix://\(unixPath)?name=api&mode=0600"],
                                   ready: "notify", serverArgs: ["--report", report],
                                   launcher: ["bash", "-c", "exec 9</etc/hostname; exec \"$@\"", "launcher"])
        defer {
            sup.stop()
            for g in 1...4 { unlink("\(report).\(g)") }
        }
        let st1 = try sup.status(ns.name)
        let gen1Pid = try #require(st1.generations.first?.pid)
        #expect(st1.listeners.map(\.name) == ["tcp-8080", "udp-5353", "api"])
        #expect(st1.listeners.map(\.fd).allSatisfy { $0 >= 3 } && st1.generations.map(\.state) == ["active"])

        func checkReport(_ generation: Int, pid: Int32) throws {
            let r = try JSONDecoder().decode(InheritReport.self, from: Data(contentsOf: URL(fileURLWithPath: "\(report).\(generation)")))
            #expect(r.pid == pid)
            #expect(r.env["LISTEN_PID"] == String(pid) && r.env["LISTEN_FDS"] == "3")
            #expect(r.env["LISTEN_FDNAMES"] == "tcp-8080:udp-5353:api")
            #expect(r.env["SOCKCTL_GENERATION"] == String(generation))
            #expect(r.env["NOTIFY_SOCKET"] == "/run/sockctl/\(ns.name).notify")
            #expect(r.fds.map(\.fd) == [3, 4, 5])
            #expect(r.fds.map(\.family) == ["AF_INET", "AF_INET", "AF_UNIX"])
            #expect(r.fds.map(\.type) == ["SOCK_STREAM", "SOCK_DGRAM", "SOCK_STREAM"])
            #expect(r.fds.map(\.listening) == [true, false, true])
            #expect(r.fds.map(\.reuseport) == [true, false, false])
            #expect(r.fds.allSatisfy { !$0.cloexec })
            #expect(r.open_above.isEmpty, "fds leaked into the child: \(r.open_above)")
        }
        try checkReport(1, pid: gen1Pid)
        // The backlog as the kernel has it (Send-Q of a listener) and the unix socket's mode.
        let ss = try ns.run(["ss", "-Hltn", "sport = :8080"]).out.split(separator: " ", omittingEmptySubsequences: true)
        #expect(ss.count >= 3 && ss[2] == "77", "\(ss)")
        var st = stat()
        #expect(stat(unixPath, &st) == 0 && st.st_mode & 0o777 == 0o600)

        let load = try Load(in: ns, port: 8080, new: 2, keepalive: 2, extra: ["--udp", "5353", "--unix", unixPath])
        var lastPid = gen1Pid
        for n in 1...3 {
            usleep(300_000)
            kill(st1.pid, SIGHUP)
            #expect(waitFor(10) {
                guard let s = try? sup.status(ns.name) else { return false }
                return s.upgrades == n && !s.upgradeInProgress && s.generations.count == 1 && s.generations[0].pid != lastPid
            })
            lastPid = try #require(try sup.status(ns.name).generations.first?.pid)
        }
        usleep(300_000)
        let result = try load.stop()
        print("tcp+udp+unix, 3 SIGHUP upgrades: \(result.requests) http requests (failed connections \(result.failed_connections), failed requests \(result.failed_requests)), \(result.datagrams) datagrams (lost \(result.lost_datagrams)) answered by \(result.answered_by), \(result.unix_requests) unix connections (failed \(result.failed_unix)) \(result.errors)")
        #expect(result.failed_connections == 0 && result.failed_requests == 0)
        #expect(result.lost_datagrams == 0 && result.failed_unix == 0)
        #expect(result.requests > 50 && result.datagrams > 50 && result.unix_requests > 50)
        #expect(result.answered_by.count >= 3, "\(result.answered_by)")
        let final = try sup.status(ns.name)
        #expect(final.upgrades == 3 && final.failedUpgrades == 0 && final.restarts == 0)
        try checkReport(4, pid: lastPid)
    }

    /// `--ready http://...` and `--ready tcp://...`: an upgrade waits for the check (the servers
    /// warm up for 600 ms before they pass it), and a generation that never passes it is stopped at
    /// --ready-timeout while the old one keeps serving, with no failed request. The checks reach only
    /// the new generation: a `/ready?generation=N` path only generation N answers with 200, and a
    /// per-generation health address 127.0.0.N:9000.
    @Test(arguments: ["http://127.0.0.1:8080/ready?generation={generation}", "tcp://127.0.0.{generation}:9000"])
    func healthCheckReadinessGatesTheUpgrade(check: String) throws {
        let ns = try TestNamespace(check.hasPrefix("http") ? "ready-http" : "ready-tcp")
        defer { ns.delete() }
        let behavior = "/tmp/\(ns.name).behavior"
        try "ok".write(toFile: behavior, atomically: true, encoding: .utf8)
        defer { unlink(behavior) }
        let sup = try PySupervised(ns, listen: ["tcp://127.0.0.1:8080"], ready: check, readyTimeout: "4s",
                                   serverArgs: ["--no-notify", "--warmup", "600ms", "--health-port", "9000", "--behavior-file", behavior])
        defer { sup.stop() }
        let gen1 = try #require(try sup.status(ns.name).generations.first)
        let load = try Load(in: ns, port: 8080, new: 2, keepalive: 2)

        let up = try ns.run([sockctlBin, "upgrade", ns.name, "--json"])
        #expect(up.status == 0, "\(up.out) \(up.err)")
        let reply = try JSONDecoder().decode(ControlProtocol.Reply.self, from: Data(up.out.utf8))
        let readyMs = try #require(reply.upgrade?.readyMs)
        #expect(readyMs >= 600, "ready after \(readyMs) ms: the check passed before the new generation had warmed up")
        let gen2 = try #require(reply.upgrade?.pid)
        #expect(reply.upgrade?.oldPids == [gen1.pid])

        try "never-ready".write(toFile: behavior, atomically: true, encoding: .utf8)
        let failed = try ns.run([sockctlBin, "upgrade", ns.name])
        #expect(failed.status == 4)
        #expect(failed.err.contains("not ready within 4s") && failed.err.contains("check did not pass") &&
                failed.err.contains("pid \(gen2)) keeps serving"), "\(failed.err)")
        usleep(200_000)
        let result = try load.stop()
        print("--ready \(check): ready after \(readyMs) ms; \(result.requests) requests, failed connections \(result.failed_connections), failed requests \(result.failed_requests)")
        #expect(result.failed_connections == 0 && result.failed_requests == 0, "\(result.errors)")
        let st = try sup.status(ns.name)
        #expect(st.generations.filter { $0.state == "active" }.map(\.pid) == [gen2])
        #expect(st.upgrades == 2 && st.failedUpgrades == 1)
    }

    /// FDSTORE=1: generation 1 deposits a memfd holding a counter; generations 2 and 3 get that
    /// same file (same inode) after the listener, named per FDNAME, and count on from it.
    @Test func fdStoreCarriesAnFdAcrossUpgrades() throws {
        let ns = try TestNamespace("fdstore")
        defer { ns.delete() }
        let report = "/tmp/\(ns.name).report"
        let sup = try PySupervised(ns, listen: ["tcp://127.0.0.1:8080"], ready: "notify", runArgs: ["--fd-store-max", "2"],
                                   serverArgs: ["--report", report, "--fdstore"])
        defer { sup.stop(); for g in 1...3 { unlink("\(report).\(g)") } }
        for _ in 0..<2 {
            let up = try ns.run([sockctlBin, "upgrade", ns.name])
            #expect(up.status == 0, "\(up.err)")
        }
        func read(_ g: Int) throws -> InheritReport {
            try JSONDecoder().decode(InheritReport.self, from: Data(contentsOf: URL(fileURLWithPath: "\(report).\(g)")))
        }
        let first = try read(1), third = try read(3)
        #expect(first.env["LISTEN_FDNAMES"] == "tcp-8080" && first.state?.count == 1)
        #expect(third.env["LISTEN_FDS"] == "2" && third.env["LISTEN_FDNAMES"] == "tcp-8080:state")
        #expect(third.fds.map(\.type) == ["SOCK_STREAM", "none"] && third.fds.allSatisfy { !$0.cloexec })
        #expect(third.state?.count == 3 && third.state?.inode == first.state?.inode)
        #expect(try sup.status(ns.name).storedFds == ["state"])
    }

    /// `--stop-signal USR2 --drain-timeout 1500ms`: the old generation gets SIGUSR2 (it ignores
    /// SIGTERM, so another signal would leave it running until the SIGKILL) and exits by itself; a
    /// generation that ignores the stop signal is SIGKILLed when the drain timeout ends, and the
    /// upgrade says so.
    @Test func stopSignalThenSigkillAfterTheDrainTimeout() throws {
        let ns = try TestNamespace("stopsig")
        defer { ns.delete() }
        let behavior = "/tmp/\(ns.name).behavior"
        try "ok".write(toFile: behavior, atomically: true, encoding: .utf8)
        defer { unlink(behavior) }
        let sup = try PySupervised(ns, listen: ["tcp://127.0.0.1:8080"], ready: "notify",
                                   drainTimeout: "1500ms", runArgs: ["--stop-signal", "USR2"],
                                   serverArgs: ["--stop-signal", "USR2", "--behavior-file", behavior])
        defer { sup.stop() }
        func upgrade() throws -> ControlProtocol.UpgradeResult {
            let r = try ns.run([sockctlBin, "upgrade", ns.name, "--json"])
            #expect(r.status == 0, "\(r.out) \(r.err)")
            return try #require(try JSONDecoder().decode(ControlProtocol.Reply.self, from: Data(r.out.utf8)).upgrade)
        }
        try "ignore-stop".write(toFile: behavior, atomically: true, encoding: .utf8)
        let polite = try upgrade()  // generation 1 stops on SIGUSR2; generation 2 will ignore it
        #expect(polite.killedPids.isEmpty && polite.drainMs < 1500, "\(polite)")
        try "ok".write(toFile: behavior, atomically: true, encoding: .utf8)
        let stubborn = try upgrade()
        #expect(stubborn.killedPids == [polite.pid] && stubborn.oldPids == [polite.pid], "\(stubborn)")
        #expect(stubborn.drainMs >= 1500)
        print("--stop-signal USR2: the old generation left \(polite.drainMs) ms after it; one ignoring it: SIGKILL after \(stubborn.drainMs) ms")
    }

    /// `--ready tcp` means "connect to the first tcp listener": without one it is a config error.
    @Test func bareTcpReadinessNeedsATcpListener() throws {
        let ns = try TestNamespace("ready-bare")
        defer { ns.delete() }
        let r = try ns.runExpectingFailure([sockctlBin, "run", "--name", ns.name, "--listen", "udp://127.0.0.1:5353", "--ready", "tcp", "--", "/bin/true"])
        #expect(r.status == 2 && r.err.contains("--ready tcp connects to the first tcp listener, and there is none"), "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: "/run/sockctl/\(ns.name).sock"))
    }
}

@Suite struct SupervisorFailureTests {
    /// The child dies (SIGKILL) while it holds open connections. What the kernel does: closing the
    /// dead process's sockets sends a FIN on those whose receive queue was empty (the clients read
    /// EOF; a request sent after it is answered with a RST, so the next send fails with EPIPE), and a RST on one with unread data
    /// (a request that arrived while the child was stopped). Those connections belonged to the dead
    /// process and are lost; no supervisor can save them. Connections that were still in the
    /// listener's accept queue (made while the child was stopped, and right after it died) are not
    /// the child's: the supervisor's copy of the listener keeps them, and the restarted generation
    /// answers every one of them.
    @Test func childKilledWithOpenConnections() throws {
        let sup = try Supervised("killed")
        defer { sup.stop() }
        let child = try #require(sup.activePid())
        let client = """
        import json, os, signal, socket, sys, time
        child = int(sys.argv[1])
        def request(c):
            c.sendall(b"GET / HTTP/1.1\\r\\nHost: t\\r\\n\\r\\n")
            return response(c)
        def response(c):
            buf = b""
            while b"\\n" not in buf.partition(b"\\r\\n\\r\\n")[2]:
                chunk = c.recv(4096)
                if not chunk: raise ConnectionError("eof")
                buf += chunk
            return buf.partition(b"\\r\\n\\r\\n")[2].decode().strip()
        def outcome(c):
            c.settimeout(5)
            try:
                return "eof" if c.recv(4096) == b"" else "data"
            except ConnectionResetError:
                return "reset"
            except OSError as e:
                return type(e).__name__
        idle = [socket.create_connection(("127.0.0.1", 8080), 5) for _ in range(3)]
        for c in idle: request(c)
        busy = socket.create_connection(("127.0.0.1", 8080), 5)
        request(busy)
        os.kill(child, signal.SIGSTOP)
        # Stopping is asynchronous: wait until every thread of the child is stopped.
        def states():
            return [open(f"/proc/{child}/task/{t}/stat").read().rpartition(")")[2].split()[0] for t in os.listdir(f"/proc/{child}/task")]
        while any(s != "T" for s in states()): time.sleep(0.005)
        busy.sendall(b"GET / HTTP/1.1\\r\\nHost: t\\r\\n\\r\\n")
        queued = [socket.create_connection(("127.0.0.1", 8080), 5) for _ in range(10)]
        for q in queued: q.sendall(b"GET / HTTP/1.1\\r\\nHost: t\\r\\nConnection: close\\r\\n\\r\\n")
        time.sleep(0.2)
        os.kill(child, signal.SIGKILL)
        after = [socket.create_connection(("127.0.0.1", 8080), 5) for _ in range(10)]
        out = {"idle": [outcome(c) for c in idle], "busy": outcome(busy)}
        try:
            idle[0].sendall(b"GET / HTTP/1.1\\r\\nHost: t\\r\\n\\r\\n"); time.sleep(0.1)
            idle[0].sendall(b"GET / HTTP/1.1\\r\\nHost: t\\r\\n\\r\\n")
            out["idle_after_eof"] = "sent"
        except OSError as e:
            out["idle_after_eof"] = type(e).__name__
        answers = []
        for c in queued + after:
            c.settimeout(10)
            try:
                answers.append(request(c) if c in after else response(c))
            except OSError as e:
                answers.append(type(e).__name__)
        out["answers"] = answers
        print(json.dumps(out))
        """
        let r = try sup.ns.run(["python3", "-c", client, String(child)])
        #expect(r.status == 0, "\(r.err)")
        struct Outcome: Decodable { var idle: [String]; var busy: String; var idle_after_eof: String; var answers: [String] }
        let o = try JSONDecoder().decode(Outcome.self, from: Data(r.out.utf8))
        print("child SIGKILLed with open connections: idle keep-alive \(o.idle), then a request on one: \(o.idle_after_eof); unread request: \(o.busy); queued + new: \(o.answers.count) answered \(Set(o.answers))")
        #expect(o.idle == ["eof", "eof", "eof"])
        #expect(o.idle_after_eof == "BrokenPipeError" || o.idle_after_eof == "ConnectionResetError", "\(o.idle_after_eof)")
        #expect(o.busy == "reset")
        let newPid = try #require(sup.activePid())
        #expect(newPid != child)
        #expect(o.answers.count == 20 && o.answers.allSatisfy { $0 == "hello from \(newPid)" }, "\(o.answers)")
        #expect(try sup.decodedStatus().restarts == 1)
    }

    /// Exit 3 ("permission or kernel support missing", DESIGN.md) for a user without the rights:
    /// a privileged port, a control socket directory it may not create, a unix listener in a
    /// directory it may not write. Each names the call and the fix, and leaves nothing behind.
    @Test func permissionErrorsExitThree() throws {
        let ns = try TestNamespace("perm")
        defer { ns.delete() }
        let open = "/tmp/\(ns.name).open", closed = "/tmp/\(ns.name).closed"
        #expect(mkdir(open, 0o777) == 0 && chmod(open, 0o777) == 0)
        #expect(mkdir(closed, 0o755) == 0)
        defer { _ = try? FileManager.default.removeItem(atPath: open); _ = try? FileManager.default.removeItem(atPath: closed) }
        let nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]

        let port = try ns.runExpectingFailure(nobody + [sockctlBin, "run", "--name", "p", "--control-socket", "\(open)/p.sock",
                                        "--listen", "tcp://127.0.0.1:80", "--", serverBin])
        #expect(port.status == 3, "\(port.status) \(port.err)")
        #expect(port.err.contains("bind(tcp://127.0.0.1:80) failed: Permission denied") && port.err.contains("CAP_NET_BIND_SERVICE"), "\(port.err)")

        let control = try ns.runExpectingFailure(nobody + [sockctlBin, "run", "--name", "c", "--control-socket", "\(closed)/sub/c.sock",
                                           "--listen", "tcp://127.0.0.1:8080", "--", serverBin])
        #expect(control.status == 3, "\(control.status) \(control.err)")
        #expect(control.err.contains("mkdir(\(closed)/sub") && control.err.contains("Permission denied"), "\(control.err)")

        let unixListener = try ns.runExpectingFailure(nobody + [sockctlBin, "run", "--name", "u", "--control-socket", "\(open)/u.sock",
                                                "--listen", "unix://\(closed)/api.sock", "--", serverBin])
        #expect(unixListener.status == 3, "\(unixListener.status) \(unixListener.err)")
        #expect(unixListener.err.contains("bind(unix://\(closed)/api.sock) failed: Permission denied"), "\(unixListener.err)")

        // Nothing left: no control socket, no notify socket, no process.
        #expect(try FileManager.default.contentsOfDirectory(atPath: open).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: closed).isEmpty)
        #expect(try capture("ip", "netns", "pids", ns.name).isEmpty)
    }
}
