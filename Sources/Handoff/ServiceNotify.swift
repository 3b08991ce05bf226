#if canImport(Glibc)
import Glibc
#endif
import CLinuxUAPI
import Foundation

/// sd_notify(3) for servers: one datagram of `KEY=VALUE` lines to the unix socket in
/// `NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace).
public enum ServiceNotify {
    /// `READY=1` (and `MAINPID=` of this process).
    @discardableResult
    public static func ready(status: String? = nil, socket path: String? = notifySocket) throws -> Bool {
        var lines = ["READY=1", "MAINPID=\(getpid())"]
        if let status { lines.append("STATUS=\(status)") }
        return try send(lines.joined(separator: "\n"), socket: path)
    }

    /// `STOPPING=1`: the server has begun to drain.
    @discardableResult
    public static func stopping(socket path: String? = notifySocket) throws -> Bool { try send("STOPPING=1", socket: path) }

    /// `FDSTORE=1`: deposit `fds` with the supervisor under `name`; later generations find them
    /// in LISTEN_FDS/LISTEN_FDNAMES (with `sockctl run --fd-store-max N`, or systemd's
    /// FileDescriptorStoreMax=). `FDSTOREREMOVE=1` for the name drops them again.
    @discardableResult
    public static func store(_ fds: [Int32], name: String, socket path: String? = notifySocket) throws -> Bool {
        try send("FDSTORE=1\nFDNAME=\(name)", fds: fds, socket: path)
    }

    public static var notifySocket: String? { ProcessInfo.processInfo.environment["NOTIFY_SOCKET"] }

    /// Send `message` (with `fds`, SCM_RIGHTS); false when NOTIFY_SOCKET is not set (not
    /// supervised: nothing to do).
    @discardableResult
    public static func send(_ message: String, fds: [Int32] = [], socket path: String? = notifySocket) throws -> Bool {
        guard let path, !path.isEmpty else { return false }
        let fd = try retryingEINTR("socket", "AF_UNIX SOCK_DGRAM") { socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        defer { close(fd) }
        var sa = sockaddr_un()
        let len = sockctl_sockaddr_un(&sa, path)
        guard len > 0 else { throw HandoffError.sys("connect", "NOTIFY_SOCKET=\(path)", errno: ENAMETOOLONG) }
        try withUnsafePointer(to: &sa) { p in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sp in
                try retryingEINTR("connect", "NOTIFY_SOCKET=\(path)") { connect(fd, sp, socklen_t(len)) }
            }
        }
        let bytes = Array(message.utf8)
        try retryingEINTR("sendmsg", "NOTIFY_SOCKET=\(path)") { sockctl_send_fds(fd, bytes, bytes.count, fds, Int32(fds.count)) }
        return true
    }
}

/// The supervisor's end of NOTIFY_SOCKET: a SOCK_DGRAM unix socket with SO_PASSCRED, so each
/// message carries the sender's pid (SCM_CREDENTIALS, struct ucred).
public final class NotifyReceiver {
    public let path: String
    public let fd: Int32

    public struct Message {
        public var senderPid: Int32
        public var fields: [String: String]
        /// Fds sent along (SCM_RIGHTS, close-on-exec); the receiver of the message owns them.
        public var fds: [Int32] = []

        public init(senderPid: Int32, fields: [String: String], fds: [Int32] = []) {
            self.senderPid = senderPid
            self.fields = fields
            self.fds = fds
        }
    }

    public init(path: String) throws {
        self.path = path
        fd = try retryingEINTR("socket", "NOTIFY_SOCKET \(path)") {
            socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        }
        do {
            if !path.hasPrefix("@") { unlink(path) }
            var sa = sockaddr_un()
            let len = sockctl_sockaddr_un(&sa, path)
            guard len > 0 else { throw HandoffError.sys("bind", path) }
            try withUnsafePointer(to: &sa) { p in
                try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sp in
                    try retryingEINTR("bind", path) { bind(fd, sp, socklen_t(len)) }
                }
            }
            try Listener.setOption(fd, SOL_SOCKET, SO_PASSCRED, 1, "SO_PASSCRED", path)
        } catch {
            close(fd)
            throw error
        }
    }

    /// Every pending message (non-blocking), with the fds sent along (FDSTORE=1).
    public func receiveAll() -> [Message] {
        var out: [Message] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        var fds = [Int32](repeating: -1, count: 16)
        while true {
            var nfds: Int32 = 0
            var pid: pid_t = 0
            var flags: Int32 = 0
            let n = sockctl_recv_fds(fd, &buf, buf.count, &fds, 16, &nfds, &pid, &flags, Int32(MSG_DONTWAIT))
            if n < 0 { break }
            let text = String(decoding: buf[0..<n], as: UTF8.self)
            var fields: [String: String] = [:]
            for line in text.split(separator: "\n") {
                let kv = line.split(separator: "=", maxSplits: 1).map(String.init)
                if kv.count == 2 { fields[kv[0]] = kv[1] }
            }
            out.append(Message(senderPid: pid, fields: fields, fds: Array(fds[0..<Int(nfds)])))
        }
        return out
    }

    deinit {
        close(fd)
        if !path.hasPrefix("@") { unlink(path) }
    }
}
