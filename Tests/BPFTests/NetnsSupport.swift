import Foundation
import Glibc
import TestSupport

/// The namespaces of these tests: sockctl-t-bpf-PID-N, loopback up, deleted by `remove()`.
typealias TestNetns = TestNamespace

extension TestNamespace {
    convenience init() throws { try self.init("bpf") }

    /// Cookies (`sk:` of `ss -e`) of the TCP sockets `ss` lists in this namespace.
    func ssTCPCookies() throws -> Set<UInt64> {
        let out = try sh("/usr/bin/ss", "-tanei", "-N", name)
        var cookies = Set<UInt64>()
        for word in out.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }) where word.hasPrefix("sk:") {
            if let c = UInt64(word.dropFirst(3), radix: 16) { cookies.insert(c) }
        }
        return cookies
    }
}

/// Runs a command; its stdout, or a thrown error when it fails.
@discardableResult
func sh(_ args: String...) throws -> String { try runChecked(args) }
