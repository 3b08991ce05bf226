// Helpers shared by the test targets: running commands, throwaway network namespaces, child
// processes that hold sockets, and plain blocking sockets. A regular target (not a test target) so
// that every test target can depend on it.
import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A failure of a test helper, with a message saying what went wrong.
public struct TestError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

// MARK: - Commands

/// What a finished command left behind.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs `args` (looked up on PATH through /usr/bin/env; an absolute path works too) to completion.
/// `stdin` is either a file handle to read from or text to feed in. A command that cannot be
/// started gives status 127 and the reason on stderr.
public func runCommand(_ args: [String], stdin: FileHandle? = nil, input: String? = nil) -> CommandResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    let inPipe = input.map { _ in Pipe() }
    if let inPipe { p.standardInput = inPipe } else if let stdin { p.standardInput = stdin }
    do { try p.run() } catch { return CommandResult(status: 127, stdout: "", stderr: "\(error)") }
    if let inPipe, let input {
        // Written from another thread so a command that prints before reading cannot block us.
        DispatchQueue.global().async {
            inPipe.fileHandleForWriting.write(Data(input.utf8))
            try? inPipe.fileHandleForWriting.close()
        }
    }
    // Drain stderr beside stdout: a command filling one pipe while we wait on the other would hang.
    nonisolated(unsafe) var errData = Data()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        errData = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    p.waitUntilExit()
    return CommandResult(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}

/// Runs `args` and returns its stdout; throws `TestError` (with stderr) when it exits non-zero.
@discardableResult
public func runChecked(_ args: [String], input: String? = nil) throws -> String {
    let r = runCommand(args, input: input)
    guard r.status == 0 else {
        throw TestError("\(args.joined(separator: " ")) exited \(r.status): \(r.stderr)\(r.stdout)")
    }
    return r.stdout
}

// MARK: - Network namespaces

/// A network namespace made for one test (`ip netns add`, loopback up). It is deleted by
/// `remove()` or, at the latest, when the object goes away, so a failing test leaves nothing.
/// Open so that a test target can keep its own naming scheme (and add its own steps) in a subclass.
open class TestNamespace: @unchecked Sendable {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var counter = 0

    /// 1, 2, 3, ... within this process.
    public static func nextNumber() -> Int { lock.withLock { counter += 1; return counter } }

    /// `PID-N`, unique within this machine's running tests.
    public static func uniqueSuffix() -> String { "\(getpid())-\(nextNumber())" }

    public let name: String
    private let lock = NSLock()
    private var removed = false

    /// Creates the namespace `PREFIX-AREA-PID-N`.
    public convenience init(_ area: String, prefix: String = "sockctl-t") throws {
        try self.init(name: "\(prefix)-\(area)-\(TestNamespace.uniqueSuffix())")
    }

    /// Creates the namespace `name`.
    public init(name: String) throws {
        self.name = name
        try runChecked(["ip", "netns", "add", name])
        do {
            try runChecked(["ip", "-n", name, "link", "set", "lo", "up"])
        } catch {
            remove()
            throw error
        }
    }

    /// /run/netns/NAME.
    public var path: String { "/run/netns/\(name)" }

    /// Runs a command inside the namespace (`ip netns exec`).
    @discardableResult
    public func exec(_ args: [String], input: String? = nil) -> CommandResult {
        runCommand(["ip", "netns", "exec", name] + args, input: input)
    }

    /// Deletes the namespace; later calls do nothing.
    public func remove() {
        let first = lock.withLock { () -> Bool in
            defer { removed = true }
            return !removed
        }
        if first { _ = runCommand(["ip", "netns", "delete", name]) }
    }

    deinit { remove() }
}

// MARK: - Child processes

/// A child process that holds something (sockets, a namespace) until released: it is started with
/// a pipe on stdin, and released by closing that pipe (then terminated if it still runs).
public final class Holder: @unchecked Sendable {
    public let process = Process()
    public let input = Pipe()
    public let output = Pipe()
    private var released = false

    /// Starts `args` (through /usr/bin/env). With `ready` (nil: do not wait), waits for that first line on its stdout
    /// and throws when something else (or nothing) comes.
    public init(_ args: [String], ready: String? = "READY", stderr: FileHandle? = FileHandle.nullDevice) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = args
        process.standardOutput = output
        if let stderr { process.standardError = stderr }
        process.standardInput = input
        try process.run()
        if let ready {
            let line = readLine()
            guard line == ready else {
                release()
                throw TestError("\(args.joined(separator: " ")) did not start: printed \(line.map { "\"\($0)\"" } ?? "nothing")")
            }
        }
    }

    public var pid: Int32 { process.processIdentifier }

    /// The next line the child prints (without the newline), nil at end of file.
    public func readLine() -> String? {
        var line = Data()
        while let b = try? output.fileHandleForReading.read(upToCount: 1), !b.isEmpty {
            if b.first == 10 { return String(decoding: line, as: UTF8.self) }
            line.append(b)
        }
        return line.isEmpty ? nil : String(decoding: line, as: UTF8.self)
    }

    /// Closes its stdin, terminates it if it still runs, and waits for it. Later calls do nothing.
    public func release() {
        if released { return }
        released = true
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    deinit { release() }
}

// MARK: - Sockets

/// Plain blocking sockets with a 3 s receive timeout, so a failing test cannot hang.
public enum Sock {
    /// `rc` when it is not negative, else a `TestError` naming `what` and errno.
    @discardableResult
    public static func check(_ rc: Int32, _ what: String) throws -> Int32 {
        guard rc >= 0 else { throw TestError("\(what): errno \(errno) \(String(cString: strerror(errno)))") }
        return rc
    }

    /// The bytes of a sockaddr_in or sockaddr_in6 for `host`:`port`.
    public static func sockaddr(_ host: String, _ port: UInt16, v6: Bool) -> [UInt8] {
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

    /// SO_RCVTIMEO of 3 s.
    public static func setTimeout(_ fd: Int32, seconds: Int = 3) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// A new socket of `type` (SOCK_STREAM, SOCK_DGRAM) with the receive timeout and SO_REUSEADDR.
    public static func make(_ type: Int32, v6: Bool) throws -> Int32 {
        let fd = try check(socket(v6 ? AF_INET6 : AF_INET, type | Int32(SOCK_CLOEXEC.rawValue), 0), "socket")
        setTimeout(fd)
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4)
        return fd
    }

    public static func make(_ type: __socket_type, v6: Bool) throws -> Int32 {
        try make(Int32(type.rawValue), v6: v6)
    }

    public static func bind(_ fd: Int32, _ host: String, _ port: UInt16, v6: Bool) throws {
        let sa = sockaddr(host, port, v6: v6)
        try check(sa.withUnsafeBytes { Glibc.bind(fd, $0.baseAddress!.assumingMemoryBound(to: Glibc.sockaddr.self), socklen_t($0.count)) }, "bind \(host):\(port)")
    }

    public static func connect(_ fd: Int32, _ host: String, _ port: UInt16, v6: Bool) throws {
        let sa = sockaddr(host, port, v6: v6)
        try check(sa.withUnsafeBytes { Glibc.connect(fd, $0.baseAddress!.assumingMemoryBound(to: Glibc.sockaddr.self), socklen_t($0.count)) }, "connect \(host):\(port)")
    }

    /// A TCP socket listening on `host`:`port`.
    public static func listener(_ host: String, _ port: UInt16, v6: Bool, backlog: Int32 = 4096) throws -> Int32 {
        let fd = try make(Int32(SOCK_STREAM.rawValue), v6: v6)
        try bind(fd, host, port, v6: v6)
        try check(Glibc.listen(fd, backlog), "listen")
        return fd
    }

    /// accept(2) on `listener`, the new socket with the receive timeout.
    public static func accept(_ listener: Int32) throws -> Int32 {
        let s = try check(Glibc.accept(listener, nil, nil), "accept")
        setTimeout(s)
        return s
    }

    /// A connected TCP pair: (client, accepted server side).
    public static func pair(listener: Int32, _ host: String, _ port: UInt16, v6: Bool) throws -> (client: Int32, server: Int32) {
        let c = try make(Int32(SOCK_STREAM.rawValue), v6: v6)
        try connect(c, host, port, v6: v6)
        return (c, try accept(listener))
    }

    /// getsockopt(SO_COOKIE).
    public static func cookie(_ fd: Int32) -> UInt64 {
        var c: UInt64 = 0
        var len = socklen_t(8)
        _ = getsockopt(fd, SOL_SOCKET, 57 /* SO_COOKIE */, &c, &len)
        return c
    }

    /// The errno of the next recv, or 0 when data arrived.
    public static func recvErrno(_ fd: Int32) -> Int32 {
        var b = [UInt8](repeating: 0, count: 16)
        return recv(fd, &b, b.count, 0) < 0 ? errno : 0
    }

    /// Sends one byte from `a` and checks that it arrives at `b`.
    public static func exchanges(_ a: Int32, _ b: Int32) -> Bool {
        var x: UInt8 = 42
        guard send(a, &x, 1, Int32(MSG_NOSIGNAL)) == 1 else { return false }
        var y: UInt8 = 0
        return recv(b, &y, 1, 0) == 1 && y == 42
    }
}

// MARK: - Threads inside a namespace

/// setns(2), found in libc at run time: Swift's Glibc module does not export it.
private let setnsCall: @convention(c) (Int32, Int32) -> Int32 = {
    guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns") else { fatalError("setns not found in libc") }
    return unsafeBitCast(sym, to: (@convention(c) (Int32, Int32) -> Int32).self)
}()

/// The work handed to the namespace thread.
private final class NamespaceJob: @unchecked Sendable {
    let work: () -> Void
    init(_ work: @escaping () -> Void) { self.work = work }
}

/// Runs `body` on a new pthread that has joined the network namespace at `path` (setns
/// CLONE_NEWNET) and waits for it; sockets it opens belong to that namespace for good. The calling
/// thread stays where it is.
public func onThread<T>(inNetns path: String, _ body: @escaping () throws -> T) throws -> T {
    nonisolated(unsafe) var result: Result<T, Error> = .failure(TestError("thread did not run"))
    let job = NamespaceJob {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { result = .failure(TestError("open \(path): errno \(errno)")); return }
        defer { close(fd) }
        guard setnsCall(fd, 0x4000_0000 /* CLONE_NEWNET */) == 0 else {
            result = .failure(TestError("setns \(path): errno \(errno) \(String(cString: strerror(errno)))")); return
        }
        result = Result { try body() }
    }
    var tid = pthread_t()
    let arg = Unmanaged.passRetained(job).toOpaque()
    let rc = pthread_create(&tid, nil, { p in
        Unmanaged<NamespaceJob>.fromOpaque(p!).takeRetainedValue().work()
        return nil
    }, arg)
    guard rc == 0 else {
        Unmanaged<NamespaceJob>.fromOpaque(arg).release()
        throw TestError("pthread_create: \(rc)")
    }
    pthread_join(tid, nil)
    return try result.get()
}

extension TestNamespace {
    /// Runs `body` on a thread inside this namespace (see `onThread(inNetns:_:)`).
    public func run<T>(_ body: @escaping () throws -> T) throws -> T { try onThread(inNetns: path, body) }
}
