import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct FDHoldTests {
    /// A listener opened by one process, sent to `sockctl fd hold`, the opener gone; a client
    /// connects meanwhile (queued in the held listener's backlog); `sockctl fd claim -- CMD` runs CMD
    /// with it as LISTEN_FDS and CMD accepts that very client.
    @Test func heldListenerKeepsItsBacklogUntilClaimed() throws {
        let ns = try TestNamespace("hold")
        defer { ns.delete() }
        let sock = "/tmp/\(ns.name).hold"
        let holder = try ns.spawn([sockctlBin, "fd", "hold", "--at", sock, "--ttl", "20s"], log: "/tmp/\(ns.name).log")
        #expect(waitFor(5) { FileManager.default.fileExists(atPath: sock) })
        let opener = """
        import socket, subprocess
        s = socket.socket(); s.bind(('127.0.0.1', 9090)); s.listen(16)
        subprocess.run(['\(sockctlBin)', 'fd', 'send', '--to', '\(sock)', 'web=%d' % s.fileno()], pass_fds=[s.fileno()], check=True)
        """
        let sent = try ns.run(["python3", "-c", opener])
        #expect(sent.status == 0, "\(sent.err)")
        // The opener has exited; the holder's copy keeps the listener alive and queuing.
        let client = try ns.spawn(["python3", "-c", "import socket; c=socket.create_connection(('127.0.0.1',9090),5); c.sendall(b'ping'); print(c.recv(10).decode())"],
                                  stdout: Pipe())
        usleep(200_000)
        let server = """
        import os, socket
        assert os.environ['LISTEN_PID'] == str(os.getpid()), os.environ['LISTEN_PID']
        assert os.environ['LISTEN_FDS'] == '1' and os.environ['LISTEN_FDNAMES'] == 'web'
        s = socket.socket(fileno=3); c, _ = s.accept(); c.sendall(b'pong:' + c.recv(4)); print('served')
        """
        let claimed = try ns.run([sockctlBin, "fd", "claim", "--from", sock, "--", "python3", "-c", server])
        #expect(claimed.status == 0, "\(claimed.err)")
        #expect(claimed.out.contains("served"))
        client.waitUntilExit()
        let out = String(decoding: (client.standardOutput as! Pipe).fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(out.contains("pong:ping"))
        holder.waitUntilExit()
        #expect(holder.terminationStatus == 0)
    }

    @Test func ttlEndsWithExitOne() throws {
        let ns = try TestNamespace("ttl")
        defer { ns.delete() }
        let r = try ns.run([sockctlBin, "fd", "hold", "--at", "/tmp/\(ns.name).hold", "--ttl", "300ms"])
        #expect(r.status == 1 && r.err.contains("TTL ended"))
    }
}

@Suite struct HandoffNIOTests {
    /// The NIO example server, started and upgraded by `sockctl run`, serves on the inherited listener.
    @Test func nioServerServesOnTheInheritedListenerAcrossAnUpgrade() throws {
        let ns = try TestNamespace("nio")
        defer { ns.delete() }
        let sup = try ns.spawn([sockctlBin, "run", "--name", ns.name, "--listen", "tcp://127.0.0.1:8081?name=http",
                                "--drain-timeout", "2s", "--", productsDir + "/handoff-nio-example", "http"], log: "/tmp/\(ns.name).log")
        defer { kill(sup.processIdentifier, SIGTERM); _ = waitFor(5) { !sup.isRunning } }
        let get = ["python3", "-c", "import socket; print(socket.create_connection(('127.0.0.1',8081),5).recv(100).decode())"]
        #expect(waitFor(10) { ((try? ns.run([sockctlBin, "status", ns.name]))?.out ?? "").contains("active") })
        let first = try ns.run(get).out
        #expect(first.hasPrefix("hello from "))
        let up = try ns.run([sockctlBin, "upgrade", ns.name])
        #expect(up.status == 0, "\(up.err)")
        let second = try ns.run(get).out
        #expect(second.hasPrefix("hello from ") && second != first)
    }
}

@Suite struct SocketActivationTests {
    /// `sockctl run` started the way systemd starts a socket-activated service (LISTEN_FDS for its own
    /// pid) adopts the inherited listener by name instead of binding, and passes it on.
    @Test func supervisorAdoptsAnInheritedListener() throws {
        let ns = try TestNamespace("sd")
        defer { ns.delete() }
        let launcher = """
        import os, socket
        s = socket.socket(); s.bind(('127.0.0.1', 8083)); s.listen(16)
        if s.fileno() != 3: os.dup2(s.fileno(), 3)
        os.set_inheritable(3, True)
        os.environ.update(LISTEN_FDS='1', LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES='web')
        os.execv('\(sockctlBin)', ['sockctl', 'run', '--name', '\(ns.name)', '--listen', 'tcp://127.0.0.1:8083?name=web', '--', '\(serverBin)'])
        """
        let sup = try ns.spawn(["python3", "-c", launcher], log: "/tmp/\(ns.name).log")
        defer { kill(sup.processIdentifier, SIGTERM); _ = waitFor(5) { !sup.isRunning } }
        #expect(waitFor(10) { ((try? ns.run([sockctlBin, "status", ns.name]))?.out ?? "").contains("active") })
        let st = try ns.run([sockctlBin, "status", ns.name]).out
        #expect(st.contains("(inherited)"), "\(st)")
        let get = try ns.run(["python3", "-c", "import socket; c=socket.create_connection(('127.0.0.1',8083),5); c.sendall(b'GET / HTTP/1.1\\r\\nConnection: close\\r\\n\\r\\n'); print(c.recv(200).decode())"])
        #expect(get.out.contains("200 OK"), "\(get.out) \(get.err)")
    }
}
