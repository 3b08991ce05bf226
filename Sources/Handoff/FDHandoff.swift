#if canImport(Glibc)
import Glibc
#endif
import CLinuxUAPI
import Foundation

/// Named fds over a unix stream socket with SCM_RIGHTS.
///
/// Wire format: a sequence of chunks. Each chunk is one sendmsg: a 4-byte big-endian length L,
/// then L bytes of JSON `{"names":[...],"more":Bool}`, carrying exactly `names.count`
/// (<= SCM_MAX_FD = 253) fds as SCM_RIGHTS. A chunk whose fds arrive short or with MSG_CTRUNC is
/// an error (every fd received so far is closed).
public enum FDHandoff {
    public struct NamedFD: Equatable {
        public var name: String
        public var fd: Int32
        public init(name: String, fd: Int32) { self.name = name; self.fd = fd }
    }

    struct Chunk: Codable { var names: [String]; var more: Bool }

    /// Send `fds` in chunks of at most `chunkSize` (<= 253) on a connected unix stream socket.
    public static func send(_ fds: [NamedFD], on sock: Int32, chunkSize: Int = 253) throws {
        let size = max(1, min(chunkSize, Int(sockctl_SCM_MAX_FD)))
        var index = 0
        repeat {
            let part = Array(fds[index..<min(fds.count, index + size)])
            index += part.count
            let body = try JSONEncoder().encode(Chunk(names: part.map(\.name), more: index < fds.count))
            var frame = withUnsafeBytes(of: UInt32(body.count).bigEndian) { Array($0) }
            frame += body
            let raw = part.map(\.fd)
            let n = try retryingEINTR("sendmsg", "SCM_RIGHTS, \(raw.count) fds") {
                sockctl_send_fds(sock, frame, frame.count, raw, Int32(raw.count))
            }
            guard n == frame.count else { throw HandoffError.proto("short sendmsg (\(n) of \(frame.count) bytes)") }
        } while index < fds.count
    }

    /// Receive chunks until one says `more: false`. Received fds are close-on-exec.
    public static func receive(on sock: Int32) throws -> [NamedFD] {
        var result: [NamedFD] = []
        do {
            while true {
                var buf = [UInt8](repeating: 0, count: 256 * 1024)
                var fds = [Int32](repeating: -1, count: Int(sockctl_SCM_MAX_FD))
                var nfds: Int32 = 0, pid: pid_t = 0, flags: Int32 = 0
                let n = try retryingEINTR("recvmsg", "SCM_RIGHTS") {
                    sockctl_recv_fds(sock, &buf, buf.count, &fds, sockctl_SCM_MAX_FD, &nfds, &pid, &flags, 0)
                }
                let got = Array(fds[0..<Int(nfds)])
                if flags & Int32(MSG_CTRUNC) != 0 {
                    got.forEach { close($0) }
                    throw HandoffError.proto("recvmsg: MSG_CTRUNC, fds were dropped (more than \(sockctl_SCM_MAX_FD) in one message, or RLIMIT_NOFILE reached)")
                }
                guard n >= 4 else {
                    got.forEach { close($0) }
                    throw HandoffError.proto(n == 0 ? "peer closed before the last chunk" : "short chunk header")
                }
                let len = Int(UInt32(buf[0]) << 24 | UInt32(buf[1]) << 16 | UInt32(buf[2]) << 8 | UInt32(buf[3]))
                guard n == 4 + len else {
                    got.forEach { close($0) }
                    throw HandoffError.proto("chunk length \(len) but \(n - 4) bytes arrived")
                }
                let chunk = try JSONDecoder().decode(Chunk.self, from: Data(buf[4..<n]))
                guard chunk.names.count == got.count else {
                    got.forEach { close($0) }
                    throw HandoffError.proto("chunk names \(chunk.names.count) fds but \(got.count) arrived")
                }
                result += zip(chunk.names, got).map { NamedFD(name: $0, fd: $1) }
                if !chunk.more { return result }
            }
        } catch {
            result.forEach { close($0.fd) }
            throw error
        }
    }

    /// Connect to a unix stream socket at `path` and send the fds.
    public static func send(_ fds: [NamedFD], to path: String) throws {
        let sock = try UnixSocket.connect(path)
        defer { close(sock) }
        try send(fds, on: sock)
    }
}

/// Small helpers for unix stream sockets.
public enum UnixSocket {
    public static func connect(_ path: String) throws -> Int32 {
        let fd = try retryingEINTR("socket", path) { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        var sa = sockaddr_un()
        let len = sockctl_sockaddr_un(&sa, path)
        guard len > 0 else { close(fd); throw HandoffError.sys("connect", path) }
        let r = withUnsafePointer(to: &sa) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(len)) }
        }
        if r != 0 { let e = errno; close(fd); throw HandoffError.sys("connect", path, errno: e) }
        return fd
    }

    /// A listening unix stream socket at `path` (stale file replaced, live one refused).
    public static func listen(_ path: String) throws -> Int32 {
        var spec = ListenerSpec(kind: .unix, address: path, port: 0, name: "control", url: "unix://\(path)")
        spec.backlog = 64
        spec.mode = 0o600
        spec.nonBlocking = true
        return try Listener.open(spec).fd
    }
}

/// The userspace "delayed close": hold fds deposited on a unix socket until a process claims them
/// or a TTL ends. A deposit is an `FDHandoff.send`; a claim is a send of zero fds, answered with
/// the held fds on the same connection.
public enum FDHolder {
    /// Claim the fds held at `path`.
    public static func claim(from path: String) throws -> [FDHandoff.NamedFD] {
        let sock = try UnixSocket.connect(path)
        defer { close(sock) }
        try FDHandoff.send([], on: sock)
        return try FDHandoff.receive(on: sock)
    }

    /// Serve at `path`: take deposits, hand everything held to the first claimant after a deposit,
    /// then return true; return false when `ttl` seconds pass first (the fds are then closed).
    public static func hold(at path: String, ttl: Double, log: (String) -> Void) throws -> Bool {
        let listener = try UnixSocket.listen(path)
        defer { close(listener); unlink(path) }
        var held: [FDHandoff.NamedFD] = []
        defer { held.forEach { close($0.fd) } }
        let deadline = ProcessEnvironment.live.now() + ttl
        while true {
            let left = deadline - ProcessEnvironment.live.now()
            if left <= 0 {
                log("TTL ended with \(held.count) fd(s) unclaimed; closing them")
                return false
            }
            var p = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, Int32(min(left, 1) * 1000)) > 0 else { continue }
            let conn = sockctl_accept4(listener, Int32(SOCK_CLOEXEC.rawValue))
            if conn < 0 { continue }
            defer { close(conn) }
            do {
                let got = try FDHandoff.receive(on: conn)
                if got.isEmpty {
                    guard !held.isEmpty else { log("claim before any deposit: nothing to give"); continue }
                    try FDHandoff.send(held, on: conn)
                    log("handed \(held.count) fd(s) to a claimant: \(held.map(\.name).joined(separator: ","))")
                    return true
                }
                held += got
                log("holding \(held.count) fd(s): \(held.map(\.name).joined(separator: ","))")
            } catch {
                log("bad peer: \(error)")
            }
        }
    }
}
