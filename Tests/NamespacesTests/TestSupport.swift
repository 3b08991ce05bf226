import Foundation
import TestSupport
import Testing
@testable import Namespaces

/// Runs a command to completion (stderr dropped); returns its stdout. Records an issue when it fails.
@discardableResult
func sh(_ args: String..., sourceLocation: SourceLocation = #_sourceLocation) -> String {
    let r = runCommand(args)
    if r.status != 0 {
        Issue.record("\(args.joined(separator: " ")) exited \(r.status)", sourceLocation: sourceLocation)
    }
    return r.stdout
}

/// A unique name for test objects: sockctl-t-ns-PID-N.
func uniqueName(_ what: String = "ns") -> String {
    "sockctl-t-\(what)-\(getpid())-\(UInt32.random(in: 0..<1_000_000))"
}

/// A named namespace (`ip netns add`) with lo up, deleted by `close()`.
final class TestNamespace {
    let name: String
    init() {
        name = uniqueName()
        sh("ip", "netns", "add", name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
    }
    var path: String { "/run/netns/\(name)" }
    var inode: UInt64 { statInode(path) }
    private var closed = false
    func close() {
        if closed { return }
        closed = true
        sh("ip", "netns", "del", name)
    }
}

/// A child process started with a pipe on stdout; `line()` reads what it prints, `stop()` kills it.
final class Child {
    let process = Process()
    private let out = Pipe()
    private var pending = Data()

    init(_ args: [String]) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = args
        process.standardOutput = out
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }

    /// The next line of its stdout (without the newline), nil at end of file.
    func line() -> String? {
        while true {
            if let nl = pending.firstIndex(of: 0x0A) {
                let l = String(decoding: pending[pending.startIndex..<nl], as: UTF8.self)
                pending = Data(pending[(nl + 1)...])
                return l
            }
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { return nil }
            pending.append(chunk)
        }
    }

    func stop() {
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
    }
}

/// st_ino of what `path` leads to (following links), 0 when it cannot be stat'ed.
func statInode(_ path: String) -> UInt64 {
    var st = stat()
    return stat(path, &st) == 0 ? UInt64(st.st_ino) : 0
}

/// readlink(2) as a String.
func readLink(_ path: String) -> String? {
    var buf = [CChar](repeating: 0, count: 256)
    let n = readlink(path, &buf, buf.count - 1)
    guard n >= 0 else { return nil }
    return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Waits (up to 5 s) until `check` holds.
func waitUntil(_ check: () -> Bool) -> Bool {
    for _ in 0..<500 {
        if check() { return true }
        usleep(10_000)
    }
    return check()
}

/// The inode of the host's network namespace: PID 1's; where /proc/1 is closed to us (a sandbox
/// whose init holds more capabilities), the kernel's fixed initial-namespace inode 0xEFFFFFF9.
func hostNamespaceInode() -> UInt64 {
    let ino = statInode("/proc/1/ns/net")
    return ino != 0 ? ino : 0xEFFF_FFF9
}
