import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A network namespace for one test (sockctl-t-handoff-PID-TAG-N), deleted (with every process in
/// it killed) by `delete()`.
final class TestNamespace: TestSupport.TestNamespace, @unchecked Sendable {
    init(_ tag: String) throws {
        try super.init(name: "sockctl-t-handoff-\(getpid())-\(tag)-\(TestSupport.TestNamespace.nextNumber())")
    }

    func delete() {
        if let out = try? capture("ip", "netns", "pids", name) {
            for pid in out.split(separator: "\n").compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
        }
        remove()
    }

    /// Start `args` inside the namespace.
    func spawn(_ args: [String], stdout: Pipe? = nil, log: String? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        if !FileManager.default.fileExists(atPath: "/usr/sbin/ip") { p.executableURL = URL(fileURLWithPath: "/sbin/ip") }
        p.arguments = ["netns", "exec", name] + args
        if let stdout { p.standardOutput = stdout }
        if let log { FileManager.default.createFile(atPath: log, contents: nil); p.standardError = FileHandle(forWritingAtPath: log) }
        try p.run()
        return p
    }

    /// `sockctl run` expected to fail at start: bounded by timeout(1), so that one that starts after
    /// all ends the test (status 124) instead of hanging it.
    func runExpectingFailure(_ args: [String], seconds: Int = 20) throws -> (status: Int32, out: String, err: String) {
        try run(["timeout", String(seconds)] + args)
    }

    func run(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let r = exec(args)
        return (r.status, r.stdout, r.stderr)
    }
}

/// Runs a command; its exit status.
@discardableResult
func sh(_ args: String...) throws -> Int32 { runCommand(args).status }

/// Runs a command; its stdout.
func capture(_ args: String...) throws -> String { runCommand(args).stdout }

/// The build products directory (beside the test bundle) and the repository.
let productsDir = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().path
let sockctlBin = productsDir + "/sockctl"
let serverBin = productsDir + "/handoff-example-server"
let repoDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
let loadgen = repoDir + "/scripts/handoff-loadgen.py"
let testServer = repoDir + "/scripts/handoff-test-server.py"

/// The load generator's final counts.
struct LoadResult: Decodable {
    var connections: Int
    var requests: Int
    var failed_connections: Int
    var failed_requests: Int
    var errors: [String: Int]
    var datagrams: Int
    var lost_datagrams: Int
    var unix_requests: Int
    var failed_unix: Int
    /// "gen N" → datagrams that generation answered.
    var answered_by: [String: Int]
}

/// A running load generator inside a namespace.
final class Load {
    let process: Process
    let out = Pipe()

    init(in ns: TestNamespace, port: Int, new: Int = 3, keepalive: Int = 3, extra: [String] = []) throws {
        process = try ns.spawn(["python3", loadgen, "--port", String(port), "--new", String(new), "--keepalive", String(keepalive)] + extra, stdout: out)
        // Wait for "started".
        var line = Data()
        while !line.contains(0x0a) { line += out.fileHandleForReading.availableData }
    }

    func stop() throws -> LoadResult {
        kill(process.processIdentifier, SIGTERM)
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let last = String(decoding: data, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
        return try JSONDecoder().decode(LoadResult.self, from: Data(last.utf8))
    }
}

func waitFor(_ seconds: Double, _ cond: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if cond() { return true }
        usleep(20_000)
    }
    return cond()
}
