import Foundation
import Testing

/// Runs a command, returns its exit status and standard output.
@discardableResult
func sh(_ args: [String], stdin: FileHandle? = nil) -> (status: Int32, out: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    if let stdin { p.standardInput = stdin }
    do { try p.run() } catch { return (127, "") }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// The sockctl binary built beside the tests.
let sockctlBinary: String = {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return root.appendingPathComponent(".build/debug/sockctl").path
}()

/// A network namespace that exists for one test and is deleted when it ends, also on failure.
final class TestNamespace {
    static var counter = 0
    static let lock = NSLock()
    let name: String
    init(_ area: String) throws {
        TestNamespace.lock.lock(); TestNamespace.counter += 1; let n = TestNamespace.counter; TestNamespace.lock.unlock()
        name = "sockctl-t-\(area)-\(getpid())-\(n)"
        let r = sh(["ip", "netns", "add", name])
        try #require(r.status == 0, "ip netns add \(name) failed")
        sh(["ip", "-n", name, "link", "set", "lo", "up"])
    }
    func exec(_ args: [String]) -> (status: Int32, out: String) { sh(["ip", "netns", "exec", name] + args) }
    deinit { sh(["ip", "netns", "del", name]) }
}

/// A process that holds sockets until its stdin closes; it prints READY once they are in place.
final class Holder {
    let process = Process()
    let input = Pipe()
    let output = Pipe()
    init(_ args: [String]) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = args
        let out = output
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        process.standardInput = input
        try process.run()
        var line = Data()
        while let b = try out.fileHandleForReading.read(upToCount: 1), !b.isEmpty {
            if b.first == 10 { break }
            line.append(b)
        }
        try #require(String(decoding: line, as: UTF8.self) == "READY", "fixture did not start: \(args)")
    }
    var pid: Int32 { process.processIdentifier }
    deinit {
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}

/// ss's short state names for our JSON state names.
let ssStateName: [String: String] = [
    "established": "ESTAB", "listening": "LISTEN", "time-wait": "TIME-WAIT", "closed": "UNCONN",
    "syn-sent": "SYN-SENT", "syn-recv": "SYN-RECV", "close-wait": "CLOSE-WAIT", "fin-wait-1": "FIN-WAIT-1",
    "fin-wait-2": "FIN-WAIT-2", "last-ack": "LAST-ACK", "closing": "CLOSING",
]

/// `addr:port` as ss prints it (`[v6]:port`, `*` for port 0).
func endpoint(_ addr: String?, _ port: Int?) -> String {
    let a = addr ?? "*"
    let host = a.contains(":") ? "[\(a)]" : a
    return "\(host):\(port.map { $0 == 0 ? "*" : String($0) } ?? "*")"
}

/// Parses `sockctl list --json` output into objects.
func jsonLines(_ text: String) throws -> [[String: Any]] {
    try text.split(separator: "\n").map { line in
        let obj = try JSONSerialization.jsonObject(with: Data(line.utf8))
        return try #require(obj as? [String: Any], "not an object: \(line)")
    }
}
