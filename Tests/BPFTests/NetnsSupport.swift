import CSockDestroy
import Foundation
import Glibc
import TestSupport

/// The namespaces of these tests: sockctl-t-bpf-PID-N, loopback up, deleted by `remove()`.
typealias TestNetns = TestNamespace

extension TestNamespace {
    convenience init() throws { try self.init("bpf") }

    /// Runs `body` on a fresh pthread that has joined this namespace (setns CLONE_NEWNET); sockets
    /// created there belong to the namespace for good. The thread ends afterwards.
    func run<T>(_ body: @escaping () throws -> T) throws -> T {
        var result: Result<T, Error> = .failure(TestError("thread did not run"))
        let path = self.path
        let job = Job {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { result = .failure(TestError("open \(path): errno \(errno)")); return }
            defer { close(fd) }
            guard sockctl_bpf_setns(fd, 0x4000_0000 /* CLONE_NEWNET */) == 0 else {
                result = .failure(TestError("setns \(path): errno \(errno)")); return
            }
            result = Result { try body() }
        }
        var tid = pthread_t()
        let arg = Unmanaged.passRetained(job).toOpaque()
        let rc = pthread_create(&tid, nil, { p in
            Unmanaged<Job>.fromOpaque(p!).takeRetainedValue().work()
            return nil
        }, arg)
        guard rc == 0 else { throw TestError("pthread_create: \(rc)") }
        pthread_join(tid, nil)
        return try result.get()
    }

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

final class Job: @unchecked Sendable {
    let work: () -> Void
    init(_ w: @escaping () -> Void) { work = w }
}

/// Runs a command; its stdout, or a thrown error when it fails.
@discardableResult
func sh(_ args: String...) throws -> String { try runChecked(args) }
