import Foundation
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Runs a command, returns its exit status, standard output and standard error.
@discardableResult
func sh(_ args: [String]) -> (status: Int32, out: String, err: String) { let r = runCommand(args); return (r.status, r.stdout, r.stderr) }

let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let sockctlBinary = packageRoot.appendingPathComponent(".build/debug/sockctl").path
let fixtureScript = packageRoot.appendingPathComponent("Tests/PolicyTests/daemon_fixture.py").path

/// PID-N, unique among this run's tests.
func uniqueSuffix() -> String { TestSupport.TestNamespace.uniqueSuffix() }

/// A network namespace for one test (sockctl-d-AREA-PID-N), deleted when the value goes away (also on failure).
final class TestNamespace: TestSupport.TestNamespace, @unchecked Sendable {
    init(_ area: String) throws { try super.init(name: "sockctl-d-\(area)-\(TestSupport.TestNamespace.uniqueSuffix())") }
    /// Adds addresses to lo (IPv6 without duplicate address detection).
    func addAddress(_ cidr: String) throws {
        var args = ["ip", "-n", name, "addr", "add", cidr, "dev", "lo"]
        if cidr.contains(":") { args.append("nodad") }
        let r = sh(args)
        try #require(r.status == 0, "ip addr add \(cidr): \(r.err)")
    }
    func deleteAddress(_ cidr: String) throws {
        let r = sh(["ip", "-n", name, "addr", "del", cidr, "dev", "lo"])
        try #require(r.status == 0, "ip addr del \(cidr): \(r.err)")
    }
}

/// The fixture process holding sockets in a namespace; `probe()` asks it what each socket does now.
final class SocketFixture {
    let process = Process()
    let input = Pipe()
    let output = Pipe()
    private var buffered = Data()

    /// `prefix` runs inside the namespace before the fixture (e.g. setpriv to change uid), `outer`
    /// before `ip netns exec` (which mounts its own /sys); `args` go to the fixture.
    init(netns: String, args: [String], prefix: [String] = [], outer: [String] = [], python: String = "python3") throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = outer + ["ip", "netns", "exec", netns] + prefix + [python, fixtureScript] + args
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        process.standardInput = input
        try process.run()
        try #require(readLine() == "READY", "fixture did not start in \(netns)")
    }

    var pid: Int32 { process.processIdentifier }

    func readLine() -> String? {
        while true {
            if let nl = buffered.firstIndex(of: 10) {
                let line = String(decoding: buffered[buffered.startIndex..<nl], as: UTF8.self)
                buffered.removeSubrange(buffered.startIndex...nl)
                return line
            }
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { return nil }
            buffered.append(chunk)
        }
    }

    func probe() throws -> [String: String] {
        input.fileHandleForWriting.write(Data("probe\n".utf8))
        let line = try #require(readLine(), "fixture exited")
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
    }

    /// Probes until `done` holds (the daemon acts asynchronously) or 10 s pass; returns the last probe.
    func probe(until done: ([String: String]) -> Bool) throws -> [String: String] {
        var last = try probe()
        let deadline = Date().addingTimeInterval(10)
        while !done(last) && Date() < deadline {
            usleep(50_000)
            last = try probe()
        }
        return last
    }

    deinit {
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}

/// `sockctl daemon` as the real binary, on a temporary unix socket, with its stdout JSON lines
/// and stderr log collected.
final class DaemonProcess {
    let process = Process()
    let socketPath: String
    let configPath: String
    let dir: String
    private let outPipe = Pipe()
    private let errPath: String
    private let lock = NSLock()
    private var outData = Data()

    init(policy: String, extraArgs: [String] = [], api: String? = nil, environment: [String: String] = [:]) throws {
        dir = NSTemporaryDirectory() + "sockctl-daemon-\(uniqueSuffix())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        socketPath = dir + "/api.sock"
        configPath = dir + "/policy.yaml"
        errPath = dir + "/stderr.log"
        try policy.write(toFile: configPath, atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: sockctlBinary)
        process.arguments = ["daemon", "--config", configPath, "--api", api ?? "unix://\(socketPath)", "--rescan", "1s",
                             "--log-level", "debug"] + extraArgs
        process.standardOutput = outPipe
        process.standardError = FileHandle(forWritingAtPath: errPath)
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, b in b } }
        let out = outPipe.fileHandleForReading
        out.readabilityHandler = { [weak self] h in
            let d = h.availableData
            guard let self, !d.isEmpty else { return }
            self.lock.withLock { self.outData.append(d) }
        }
        try process.run()
    }

    /// The JSON lines printed so far (one per socket acted on).
    var records: [[String: Any]] {
        let text = lock.withLock { String(decoding: outData, as: UTF8.self) }
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    var log: String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }

    /// An HTTP request over the unix socket (curl); status and body.
    func request(_ method: String, _ path: String, body: String? = nil, headers: [String] = [], tcp: String? = nil,
                 asUser: String? = nil) -> (status: Int, body: String) {
        var args = ["curl", "-s", "-m", "20", "-o", "-", "-w", "\n%{http_code}", "-X", method]
        if let tcp { args += ["http://\(tcp)\(path)"] } else { args += ["--unix-socket", socketPath, "http://localhost\(path)"] }
        for h in headers { args += ["-H", h] }
        if let body { args += ["-H", "Content-Type: application/json", "--data-binary", body] }
        if let asUser { args = ["setpriv", "--reuid", asUser, "--regid", asUser, "--clear-groups"] + args }
        let r = sh(args)
        let lines = r.out.split(separator: "\n", omittingEmptySubsequences: false)
        let status = Int(lines.last ?? "") ?? 0
        return (status, lines.dropLast().joined(separator: "\n"))
    }

    func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
    }

    /// Waits until /healthz answers and lists every namespace in `watching`.
    func waitReady(watching: [String] = [], tcp: String? = nil, headers: [String] = []) throws {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            try #require(process.isRunning, "daemon exited: \(log)")
            let r = request("GET", "/healthz", headers: headers, tcp: tcp)
            if r.status == 200 {
                let ns = json(r.body)["netns"] as? [String] ?? []
                if watching.allSatisfy(ns.contains) { return }
            }
            usleep(50_000)
        }
        Issue.record("daemon not ready (watching \(watching)): \(log)")
        throw CancellationError()
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        process.waitUntilExit()
        outPipe.fileHandleForReading.readabilityHandler = nil
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// The records of a daemon for one namespace and rule; waits up to 5 s for at least `count`
/// (the daemon prints them just after the destroys the fixture may already have seen).
func records(_ d: DaemonProcess, rule: String, netns: String, count: Int = 0) -> [[String: Any]] {
    let deadline = Date().addingTimeInterval(5)
    while true {
        let r = d.records.filter { $0["rule"] as? String == rule && $0["netns"] as? String == netns }
        if r.count >= count || Date() > deadline { return r }
        usleep(50_000)
    }
}
