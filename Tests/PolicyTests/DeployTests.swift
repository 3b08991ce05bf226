import Foundation
import Handoff
import Testing
import Yams
#if canImport(Glibc)
import Glibc
#endif

/// deploy/: the systemd unit and the Kubernetes DaemonSet, run as written. There is no systemd or
/// kubelet here, so each test does their part by hand, from the file: the command lines, the
/// notify protocol, the reload command, the capability set, the volumes and the host namespaces.
@Suite struct DeployTests {
    static let deployDirectory = packageRoot.appendingPathComponent("deploy").path

    /// The `[Service]` settings of a unit file, each key's values in order.
    static func serviceSettings(_ text: String) -> [String: [String]] {
        var out: [String: [String]] = [:]
        var section = ""
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") { section = line; continue }
            guard section == "[Service]", let eq = line.firstIndex(of: "=") else { continue }
            out[String(line[..<eq]), default: []].append(String(line[line.index(after: eq)...]))
        }
        return out
    }

    /// `setpriv --bounding-set` argument for capability names (CAP_NET_ADMIN or NET_ADMIN).
    static func boundingSet(_ caps: [String]) -> String {
        (["-all"] + caps.map { "+" + $0.lowercased().replacingOccurrences(of: "cap_", with: "") }).joined(separator: ",")
    }

    /// Direct children of a process (/proc/PID/task/PID/children).
    static func children(of pid: Int32) -> [Int32] {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
        return text.split(separator: " ").compactMap { Int32($0) }
    }

    static func waitFor(_ seconds: Double = 10, _ done: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try done() { return true }
            usleep(50_000)
        }
        return try done()
    }

    static func curl(unix socket: String, _ path: String) -> (status: Int, body: String) {
        let r = sh(["curl", "-s", "-m", "10", "-o", "-", "-w", "\n%{http_code}", "--unix-socket", socket, "http://localhost\(path)"])
        let lines = r.out.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    // MARK: systemd

    /// The unit's ExecStartPre/ExecStart as written (only the binary, policy and API socket paths
    /// moved to this test's), under its CapabilityBoundingSet, with NOTIFY_SOCKET on a datagram
    /// socket the test owns, inside a test namespace: READY=1 from the main pid; ExecReload
    /// (`kill -HUP $MAINPID`) loads the changed policy; the reloaded rule kills on an address
    /// removal, with the BPF destroy programs loaded under those capabilities; SIGTERM gives
    /// STOPPING=1 and exit 0.
    /// `systemd-analyze verify` accepts the unit with no warning.
    @Test func systemdUnitStartsReloadsAndStopsAsWritten() throws {
        let text = try String(contentsOfFile: Self.deployDirectory + "/sockctl-daemon.service", encoding: .utf8)
        let unit = Self.serviceSettings(text)
        #expect(unit["Type"] == ["notify"])
        #expect(unit["NotifyAccess"] == ["main"])
        let start = try #require(unit["ExecStart"]?.first)
        let reload = try #require(unit["ExecReload"]?.first)
        let caps = try #require(unit["CapabilityBoundingSet"]?.first).split(separator: " ").map(String.init)
        #expect(unit["AmbientCapabilities"]?.first?.split(separator: " ").map(String.init) == caps)

        let dir = NSTemporaryDirectory() + "sockctl-unit-\(uniqueSuffix())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let policy = dir + "/policy.yaml"
        let api = dir + "/api.sock"
        let hostPaths = [("/usr/local/bin/sockctl", sockctlBinary), ("/etc/sockctl/policy.yaml", policy),
                         ("unix:///run/sockctl.sock", "unix://" + api)]
        for (host, _) in hostPaths { #expect(start.contains(host), "ExecStart names \(host)") }
        func local(_ line: String, pid: Int32 = 0) throws -> [String] {
            var l = line.replacingOccurrences(of: "$MAINPID", with: "\(pid)")
            for (host, mine) in hostPaths { l = l.replacingOccurrences(of: host, with: mine) }
            // systemd splits on spaces and honours quotes; these lines have none.
            try #require(!l.contains("\"") && !l.contains("'") && !l.contains("\\"), "unquoted command line: \(line)")
            return l.split(separator: " ").map(String.init)
        }

        // Offline check of the unit's syntax (binary path only, so that the executable exists).
        try text.replacingOccurrences(of: "/usr/local/bin/sockctl", with: sockctlBinary)
            .write(toFile: dir + "/sockctl-daemon.service", atomically: true, encoding: .utf8)
        let verify = sh(["systemd-analyze", "verify", dir + "/sockctl-daemon.service"])
        #expect(verify.status == 0 && verify.err.isEmpty && verify.out.isEmpty, "systemd-analyze verify: \(verify.err)\(verify.out)")

        let ns = try TestNamespace("unit")
        try ns.addAddress("10.13.0.5/32")
        try ns.addAddress("10.13.0.6/32")
        let requestRule = """
        rules:
          - name: on-request
            on: request
            match: 'dport = :8080'
            netns: [\(ns.name)]
        """
        try requestRule.write(toFile: policy, atomically: true, encoding: .utf8)
        for pre in unit["ExecStartPre"] ?? [] {
            let r = sh(try local(pre))
            #expect(r.status == 0, "ExecStartPre \(pre): \(r.err)")
        }

        let receiver = try NotifyReceiver(path: dir + "/notify.sock")
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        daemon.arguments = ["--bounding-set", Self.boundingSet(caps), "--", "ip", "netns", "exec", ns.name] + (try local(start))
        daemon.environment = ProcessInfo.processInfo.environment.merging(["NOTIFY_SOCKET": receiver.path]) { _, b in b }
        daemon.standardOutput = FileHandle.nullDevice
        _ = FileManager.default.createFile(atPath: dir + "/stderr.log", contents: nil)
        daemon.standardError = FileHandle(forWritingAtPath: dir + "/stderr.log")
        try daemon.run()
        defer { if daemon.isRunning { daemon.terminate(); daemon.waitUntilExit() } }
        let pid = daemon.processIdentifier
        let log = { (try? String(contentsOfFile: dir + "/stderr.log", encoding: .utf8)) ?? "" }

        var got: [NotifyReceiver.Message] = []
        try #require(Self.waitFor(20) { got += receiver.receiveAll(); return got.contains { $0.fields["READY"] == "1" } }, "READY=1: \(log())")
        // NotifyAccess=main: the message must come from the pid systemd started (setpriv and
        // `ip netns exec` exec, so it is that pid).
        #expect(got.contains { $0.fields["READY"] == "1" && $0.senderPid == pid })
        let rules = Self.curl(unix: api, "/v1/rules")
        #expect(rules.status == 200 && rules.body.contains("on-request") && !rules.body.contains("vanished-address"))

        // ExecReload after the policy changed: the new rule is in force.
        try (requestRule + """

          - name: vanished-address
            on: address-removed
            netns: [\(ns.name)]
        """).write(toFile: policy, atomically: true, encoding: .utf8)
        let r = sh(try local(reload, pid: pid))
        #expect(r.status == 0, "ExecReload: \(r.err)")
        #expect(Self.waitFor { Self.curl(unix: api, "/v1/rules").body.contains("vanished-address") }, "reloaded: \(log())")
        #expect(log().contains("policy reloaded"))
        #expect(Self.waitFor { (Self.curl(unix: api, "/healthz").body).contains(ns.name) })

        // With exactly the unit's capabilities the BPF destroy programs load (the fast event path)
        // and the new rule destroys.
        #expect(Self.waitFor(10) { log().contains("BPF destroy programs loaded") }, "\(log())")
        let fixture = try SocketFixture(netns: ns.name, args: ["10.13.0.5", "10.13.0.6"])
        try ns.deleteAddress("10.13.0.5/32")
        // Probe once the daemon reported the kill (a probe racing it could see the address vanish first).
        #expect(Self.waitFor(10) { log().contains("sockets destroyed") }, "\(log())")
        let p = try fixture.probe()
        #expect(DaemonEventTests.targets(p, "10.13.0.5").values.allSatisfy { $0 == "ECONNABORTED" }, "\(p) \(log())")
        #expect(DaemonEventTests.targets(p, "10.13.0.6").values.allSatisfy { $0 == "ok" }, "\(p)")

        // systemctl stop: SIGTERM, STOPPING=1, clean exit.
        kill(pid, SIGTERM)
        daemon.waitUntilExit()
        got += receiver.receiveAll()
        #expect(got.contains { $0.fields["STOPPING"] == "1" && $0.senderPid == pid })
        #expect(daemon.terminationReason == .exit && daemon.terminationStatus == 0, "\(log())")
    }

    // MARK: Kubernetes

    /// The DaemonSet manifest: host PID and network, the capabilities, /run/netns from the host;
    /// its ConfigMap policy passes `--check`; its container command runs the daemon on a "node"
    /// made of test namespaces (see `runsOnAnEmulatedNode`).
    @Test func daemonSetManifestRunsAsWritten() throws {
        let text = try String(contentsOfFile: Self.deployDirectory + "/daemonset.yaml", encoding: .utf8)
        var docs: [[String: Any]] = []
        var seq = try Yams.load_all(yaml: text)
        while let d = seq.next() { if let m = d as? [String: Any] { docs.append(m) } }
        #expect(seq.error == nil, "YAML: \(String(describing: seq.error))")
        func doc(_ kind: String) throws -> [String: Any] { try #require(docs.first { $0["kind"] as? String == kind }, "no \(kind)") }
        let ds = try doc("DaemonSet")
        let configMap = try doc("ConfigMap")
        let secret = try doc("Secret")
        #expect(ds["apiVersion"] as? String == "apps/v1")
        let spec = try #require(((ds["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])
        #expect(spec["hostPID"] as? Bool == true)
        #expect(spec["hostNetwork"] as? Bool == true)
        let container = try #require((spec["containers"] as? [[String: Any]])?.first)
        let command = try #require(container["command"] as? [String])
        let security = try #require(container["securityContext"] as? [String: Any])
        let added = try #require((security["capabilities"] as? [String: Any])?["add"] as? [String])
        for c in ["NET_ADMIN", "SYS_ADMIN"] { #expect(added.contains(c), "capabilities.add has \(c)") }
        let volumes = try #require(spec["volumes"] as? [[String: Any]])
        let mounts = try #require(container["volumeMounts"] as? [[String: Any]])
        let netnsMount = try #require(mounts.first { $0["mountPath"] as? String == "/run/netns" })
        #expect(netnsMount["mountPropagation"] as? String == "HostToContainer")
        let netnsVolume = volumes.first { $0["name"] as? String == netnsMount["name"] as? String }
        #expect((netnsVolume?["hostPath"] as? [String: Any])?["path"] as? String == "/run/netns")

        // The volumes as the kubelet would project them: ConfigMap and Secret keys become files.
        let dir = NSTemporaryDirectory() + "sockctl-k8s-\(uniqueSuffix())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var projected: [(mountPath: String, directory: String)] = []
        for m in mounts {
            guard let name = m["name"] as? String, let path = m["mountPath"] as? String,
                  let v = volumes.first(where: { $0["name"] as? String == name }) else { Issue.record("mount without volume: \(m)"); continue }
            var files: [String: String]?
            if let c = v["configMap"] as? [String: Any] {
                #expect((configMap["metadata"] as? [String: Any])?["name"] as? String == c["name"] as? String)
                files = configMap["data"] as? [String: String]
            } else if let s = v["secret"] as? [String: Any] {
                #expect((secret["metadata"] as? [String: Any])?["name"] as? String == s["secretName"] as? String)
                files = secret["stringData"] as? [String: String]
            }
            guard let files else { continue }  // hostPath: the same path on this "node"
            let d = dir + "/volume-\(name)"
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
            for (k, v) in files { try v.write(toFile: d + "/" + k, atomically: true, encoding: .utf8) }
            projected.append((path, d))
        }
        func local(_ s: String) -> String {
            var s = s.replacingOccurrences(of: "/usr/local/bin/sockctl", with: sockctlBinary)
            for (m, d) in projected { s = s.replacingOccurrences(of: m + "/", with: d + "/") }
            return s
        }
        #expect(command.first == "/usr/local/bin/sockctl" && command.dropFirst().first == "daemon")
        let args = command.map(local)
        let configIndex = try #require(args.firstIndex(of: "--config"))
        let policyFile = args[configIndex + 1]
        let check = sh([sockctlBinary, "daemon", "--check", policyFile])
        #expect(check.status == 0 && check.out.hasSuffix(": ok, 1 rule\n"), "--check on the ConfigMap policy: \(check.err)")

        try Self.runsOnAnEmulatedNode(args: args, capabilities: added,
                                      token: try #require((secret["stringData"] as? [String: String])?["token"]),
                                      probe: ((container["readinessProbe"] as? [String: Any])?["exec"] as? [String: Any])?["command"] as? [String],
                                      local: local)
    }

    /// A "node" made of test namespaces only: the daemon runs in `node` (hostNetwork) inside its own
    /// PID and mount namespaces (hostPID: it sees only the processes started there), with a
    /// /run/netns that holds just `node` and `pod`. So `netns: all` in the manifest's policy means
    /// these two, and nothing of the real host is watched. The capabilities are a container
    /// runtime's defaults plus the manifest's `add`.
    static func runsOnAnEmulatedNode(args: [String], capabilities: [String], token: String, probe: [String]?,
                                     local: (String) -> String) throws {
        let node = try TestNamespace("node")
        let pod = try TestNamespace("pod")
        try pod.addAddress("10.14.0.5/32")
        try pod.addAddress("10.14.0.6/32")
        let keep = NSTemporaryDirectory() + "sockctl-node-\(uniqueSuffix())"
        try FileManager.default.createDirectory(atPath: keep, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: keep) }
        let runtimeDefaults = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
                               "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"]
        // pid 1 of the new PID namespace is this shell (it forwards SIGTERM; a pid 1 without a
        // handler would not get it), in `node`; the daemon is its child.
        let script = """
        set -e
        node=$1; pod=$2; keep=$3; shift 3
        for n in "$node" "$pod"; do touch "$keep/$n"; mount --bind "/run/netns/$n" "$keep/$n"; done
        for m in $(awk '{print $5}' /proc/self/mountinfo | grep '^/run/netns/' | sort -r); do umount -l "$m"; done
        mount -t tmpfs sockctl-node /run/netns
        for n in "$node" "$pod"; do touch "/run/netns/$n"; mount --bind "$keep/$n" "/run/netns/$n"; done
        set +e
        "$@" &
        child=$!
        trap 'kill -TERM $child' TERM INT
        st=0
        while kill -0 $child 2>/dev/null; do wait $child; st=$?; done
        exit $st
        """
        let stderrPath = keep + "/stderr.log"
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["ip", "netns", "exec", node.name, "setpriv", "--bounding-set", boundingSet(runtimeDefaults + capabilities), "--",
                       "unshare", "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private", "--kill-child",
                       "sh", "-c", script, "sh", node.name, pod.name, keep] + args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle(forWritingAtPath: stderrPath)
        try p.run()
        defer { if p.isRunning { p.terminate(); p.waitUntilExit() } }
        let log = { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
        let curl = { (headers: [String]) -> (status: Int, body: String) in
            let r = node.exec(["curl", "-s", "-m", "5", "-o", "-", "-w", "\n%{http_code}"] + headers.flatMap { ["-H", $0] } + ["http://127.0.0.1:9464/healthz"])
            let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
        }
        let auth = "Authorization: Bearer \(token)"
        var watched: [String] = []
        _ = waitFor(20) {
            let r = curl([auth])
            watched = (try? JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any])?["netns"] as? [String] ?? []
            return watched.count >= 2
        }
        // Only the node's two namespaces: the emulation holds (nothing of the real host is watched).
        try #require(watched.count == 2 && watched.contains(pod.name), "watching \(watched): \(log())")
        #expect(curl([]).status == 401, "the TCP API wants the Secret's token")

        // The manifest's readiness probe, with the token volume where this node has it.
        if let probe {
            #expect(node.exec(probe.map(local)).status == 0, "readinessProbe \(probe)")
        } else {
            Issue.record("no exec readinessProbe")
        }

        // The ConfigMap's rule at work in a "pod" namespace, through BPF (loaded with these capabilities).
        #expect(waitFor(10) { log().contains("BPF destroy programs loaded") }, "\(log())")
        let fixture = try SocketFixture(netns: pod.name, args: ["10.14.0.5", "10.14.0.6"])
        try pod.deleteAddress("10.14.0.5/32")
        #expect(waitFor(10) { log().contains("sockets destroyed") }, "\(log())")
        let after = try fixture.probe()
        #expect(DaemonEventTests.targets(after, "10.14.0.5").values.allSatisfy { $0 == "ECONNABORTED" }, "\(after) \(log())")
        #expect(DaemonEventTests.targets(after, "10.14.0.6").values.allSatisfy { $0 == "ok" }, "\(after)")

        // Pod deletion: SIGTERM to the container's pid 1, clean exit.
        let shell = try #require(children(of: p.processIdentifier).first, "the PID namespace's first process")
        kill(shell, SIGTERM)
        p.waitUntilExit()
        #expect(p.terminationReason == .exit && p.terminationStatus == 0, "\(log())")
        #expect(log().contains("stopped"))
    }
}
