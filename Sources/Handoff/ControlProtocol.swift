#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The supervisor's control socket: one JSON object per line each way. A client sends one request
/// line and reads one reply line; then the supervisor closes the connection.
///
///     {"command":"upgrade"}  ->  {"ok":true,"message":"...","generation":3,...} (when done)
///     {"command":"status"}   ->  {"ok":true,"status":{...}}
public enum ControlProtocol {
    public static let directory = "/run/sockctl"

    public static func socketPath(name: String) -> String { "\(directory)/\(name).sock" }
    public static func notifyPath(name: String) -> String { "\(directory)/\(name).notify" }

    public struct Request: Codable { public var command: String; public init(command: String) { self.command = command } }

    public struct UpgradeResult: Codable {
        public var generation: Int
        public var pid: Int32
        public var readyMs: Int
        /// From sending the stop signal to the last old generation gone.
        public var drainMs: Int
        public var oldPids: [Int32]
        public var killedPids: [Int32]
    }

    public struct Reply: Codable {
        public var ok: Bool
        public var message: String
        public var upgrade: UpgradeResult?
        public var status: SupervisorStatus?
    }

    /// Send one request and wait for the reply (no timeout: an upgrade takes as long as it takes).
    public static func call(path: String, command: String) throws -> Reply {
        let fd = try UnixSocket.connect(path)
        defer { close(fd) }
        var line = try JSONEncoder().encode(Request(command: command))
        line.append(0x0a)
        try line.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = try retryingEINTR("write", path) { write(fd, raw.baseAddress! + off, raw.count - off) }
                off += n
            }
        }
        var data = Data()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = try retryingEINTR("read", path) { read(fd, &buf, buf.count) }
            if n == 0 { break }
            data.append(contentsOf: buf[0..<n])
            if buf[n - 1] == 0x0a { break }
        }
        guard !data.isEmpty else { throw HandoffError.proto("the supervisor at \(path) closed the connection without a reply") }
        return try JSONDecoder().decode(Reply.self, from: data)
    }
}

/// `sockctl status --json`.
public struct SupervisorStatus: Codable {
    public struct Generation: Codable {
        public var generation: Int
        public var pid: Int32
        public var state: String
        public var uptimeMs: Int
    }
    public struct ListenerInfo: Codable {
        public var name: String
        public var fd: Int32
        public var url: String
        public var inherited: Bool
    }
    public var name: String
    public var pid: Int32
    public var command: [String]
    public var ready: String
    public var listeners: [ListenerInfo]
    public var generations: [Generation]
    public var upgradeInProgress: Bool
    public var upgrades: Int
    public var failedUpgrades: Int
    public var restarts: Int
    public var lastUpgrade: String?
    /// Names of the fds generations deposited with FDSTORE=1 (passed to every later generation).
    public var storedFds: [String]?
}
