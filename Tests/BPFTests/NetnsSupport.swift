import CSockDestroy
import Foundation
import Glibc

/// A network namespace made for one test (`ip netns add`), loopback up, deleted by `remove()`.
final class TestNetns {
    nonisolated(unsafe) static var counter = 0
    static let lock = NSLock()
    let name: String

    init() throws {
        let n = TestNetns.lock.withLock { TestNetns.counter += 1; return TestNetns.counter }
        name = "sockctl-t-bpf-\(getpid())-\(n)"
        try sh("/usr/sbin/ip", "netns", "add", name)
        try sh("/usr/sbin/ip", "-n", name, "link", "set", "lo", "up")
    }

    func remove() { _ = try? sh("/usr/sbin/ip", "netns", "delete", name) }

    /// Runs `body` on a fresh pthread that has joined this namespace (setns CLONE_NEWNET); sockets
    /// created there belong to the namespace for good. The thread ends afterwards.
    func run<T>(_ body: @escaping () throws -> T) throws -> T {
        var result: Result<T, Error> = .failure(TestError("thread did not run"))
        let path = "/run/netns/\(name)"
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

struct TestError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

@discardableResult
func sh(_ args: String...) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: args[0])
    p.arguments = Array(args.dropFirst())
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    guard p.terminationStatus == 0 else { throw TestError("\(args.joined(separator: " ")): \(text)") }
    return text
}

/// Plain blocking sockets with a receive timeout, so a failing test cannot hang.
enum Sock {
    static func check(_ rc: Int32, _ what: String) throws -> Int32 {
        guard rc >= 0 else { throw TestError("\(what): errno \(errno) \(String(cString: strerror(errno)))") }
        return rc
    }

    static func sockaddr(_ host: String, _ port: UInt16, v6: Bool) -> [UInt8] {
        if v6 {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = port.bigEndian
            _ = inet_pton(AF_INET6, host, &a.sin6_addr)
            return withUnsafeBytes(of: a) { Array($0) }
        }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        _ = inet_pton(AF_INET, host, &a.sin_addr)
        return withUnsafeBytes(of: a) { Array($0) }
    }

    static func make(_ type: Int32, v6: Bool) throws -> Int32 {
        let fd = try check(socket(v6 ? AF_INET6 : AF_INET, type | Int32(SOCK_CLOEXEC.rawValue), 0), "socket")
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4)
        return fd
    }

    static func bind(_ fd: Int32, _ host: String, _ port: UInt16, v6: Bool) throws {
        let sa = sockaddr(host, port, v6: v6)
        _ = try check(sa.withUnsafeBytes { Glibc.bind(fd, $0.baseAddress!.assumingMemoryBound(to: Glibc.sockaddr.self), socklen_t($0.count)) }, "bind \(host):\(port)")
    }

    static func connect(_ fd: Int32, _ host: String, _ port: UInt16, v6: Bool) throws {
        let sa = sockaddr(host, port, v6: v6)
        _ = try check(sa.withUnsafeBytes { Glibc.connect(fd, $0.baseAddress!.assumingMemoryBound(to: Glibc.sockaddr.self), socklen_t($0.count)) }, "connect \(host):\(port)")
    }

    static func listener(_ host: String, _ port: UInt16, v6: Bool) throws -> Int32 {
        let fd = try make(Int32(SOCK_STREAM.rawValue), v6: v6)
        try bind(fd, host, port, v6: v6)
        _ = try check(Glibc.listen(fd, 4096), "listen")
        return fd
    }

    /// A connected TCP pair: (client, accepted server side).
    static func pair(listener: Int32, _ host: String, _ port: UInt16, v6: Bool) throws -> (client: Int32, server: Int32) {
        let c = try make(Int32(SOCK_STREAM.rawValue), v6: v6)
        try connect(c, host, port, v6: v6)
        let s = try check(accept(listener, nil, nil), "accept")
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        _ = setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return (c, s)
    }

    /// getsockopt(SO_COOKIE).
    static func cookie(_ fd: Int32) -> UInt64 {
        var c: UInt64 = 0
        var len = socklen_t(8)
        _ = getsockopt(fd, SOL_SOCKET, 57 /* SO_COOKIE */, &c, &len)
        return c
    }

    /// The errno of a failing recv, or 0 when `expectData` arrived.
    static func recvErrno(_ fd: Int32) -> Int32 {
        var b = [UInt8](repeating: 0, count: 16)
        let n = recv(fd, &b, b.count, 0)
        return n < 0 ? errno : 0
    }

    /// Sends one byte from `a` and checks that it arrives at `b`.
    static func exchanges(_ a: Int32, _ b: Int32) -> Bool {
        var x: UInt8 = 42
        guard send(a, &x, 1, Int32(MSG_NOSIGNAL)) == 1 else { return false }
        var y: UInt8 = 0
        return recv(b, &y, 1, 0) == 1 && y == 42
    }
}
