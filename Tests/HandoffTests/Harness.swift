import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A network namespace for one test, deleted (with every process in it killed) by `delete()`.
final class TestNamespace {
    static var counter = 0
    static let lock = NSLock()
    let name: String

    init(_ tag: String) throws {
        TestNamespace.lock.lock(); TestNamespace.counter += 1; let n = TestNamespace.counter; TestNamespace.lock.unlock()
        name = "sockctl-t-handoff-\(getpid())-\(tag)-\(n)"
        try sh("ip", "netns", "add", name)
        try sh("ip", "-n", name, "link", "set", "lo", "up")
    }

    func delete() {
        if let out = try? capture("ip", "netns", "pids", name) {
            for pid in out.split(separator: "\n").compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
        }
        _ = try? sh("ip", "netns", "del", name)
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
        let out = Pipe(), err = Pipe()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        p.arguments = ["netns", "exec", name] + args
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }
}

@discardableResult
func sh(_ args: String...) throws -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    try p.run()
    p.waitUntilExit()
    return p.terminationStatus
}

func capture(_ args: String...) throws -> String {
    let p = Process()
    let out = Pipe()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    p.standardOutput = out
    try p.run()
    let d = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: d, as: UTF8.self)
}

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
