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

/// TestSupport's throwaway namespace (`sockctl-t-ns-PID-N`, lo up, deleted on `close()` or when
/// released), with the nsfs inode these tests compare against.
extension TestSupport.TestNamespace {
    convenience init() throws { try self.init("ns") }
    var inode: UInt64 { statInode(path) }
    func close() { remove() }
}

/// A child process held for a test (TestSupport's Holder, not waiting for a ready line). Release
/// closes its stdin: children here end on EOF (`cat`, `sys.stdin.read()`).
func holdChild(_ args: [String]) throws -> Holder { try Holder(args, ready: nil) }

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
