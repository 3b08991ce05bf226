#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The systemd socket-activation protocol (sd_listen_fds(3)): fds from `SD_LISTEN_FDS_START` = 3,
/// `LISTEN_FDS` = their count, `LISTEN_PID` = the pid they are meant for, `LISTEN_FDNAMES` =
/// colon-separated names (missing names are "unknown", as systemd says).
public enum ListenFDs {
    public static let start: Int32 = 3

    /// Parse the protocol's variables. Returns [] when `LISTEN_FDS` is absent or `LISTEN_PID` names
    /// another process (the fds are then not ours, as sd_listen_fds says).
    public static func parse(environment env: [String: String], pid: Int32) throws -> [(name: String, fd: Int32)] {
        guard let countText = env["LISTEN_FDS"] else { return [] }
        guard let pidText = env["LISTEN_PID"] else {
            throw HandoffError.listenEnvironment("LISTEN_FDS=\(countText) without LISTEN_PID")
        }
        guard let listenPid = Int32(pidText), listenPid > 0 else {
            throw HandoffError.listenEnvironment("LISTEN_PID='\(pidText)' is not a pid")
        }
        guard listenPid == pid else { return [] }
        guard let count = Int32(countText), count >= 0, count <= 20000 else {
            throw HandoffError.listenEnvironment("LISTEN_FDS='\(countText)' is not a count of fds")
        }
        var names: [String] = []
        if let namesText = env["LISTEN_FDNAMES"] {
            names = namesText.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard names.count == Int(count) else {
                throw HandoffError.listenEnvironment("LISTEN_FDNAMES has \(names.count) names for LISTEN_FDS=\(count)")
            }
        }
        return (0..<count).map { i in
            (name: names.isEmpty || names[Int(i)].isEmpty ? "unknown" : names[Int(i)], fd: start + i)
        }
    }

    /// The variables for a child that gets `names` as fds 3... (LISTEN_PID is added by the spawner).
    public static func environment(names: [String]) -> [String: String] {
        guard !names.isEmpty else { return [:] }
        return ["LISTEN_FDS": String(names.count), "LISTEN_FDNAMES": names.joined(separator: ":")]
    }
}

/// Server-side API: the listeners this process inherited, by name.
///
///     let listeners = try Listeners.inherited()
///     let fd = try listeners.one("http")
public struct Listeners {
    public private(set) var byName: [String: [Int32]] = [:]
    public private(set) var all: [(name: String, fd: Int32)] = []

    /// Reads LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES, validates LISTEN_PID against getpid(), marks
    /// the fds close-on-exec (so they do not leak into our own children) and, by default, removes
    /// the variables from the environment as sd_listen_fds(1) does.
    public static func inherited(unsetEnvironment: Bool = true) throws -> Listeners {
        let env = ProcessInfo.processInfo.environment
        let fds = try ListenFDs.parse(environment: env, pid: getpid())
        var result = Listeners()
        for entry in fds {
            guard fcntl(entry.fd, F_SETFD, FD_CLOEXEC) == 0 else {
                throw HandoffError.listenEnvironment("fd \(entry.fd) (\(entry.name)) is not open: \(String(cString: strerror(errno)))")
            }
            result.byName[entry.name, default: []].append(entry.fd)
            result.all.append(entry)
        }
        if unsetEnvironment {
            unsetenv("LISTEN_FDS"); unsetenv("LISTEN_PID"); unsetenv("LISTEN_FDNAMES")
        }
        return result
    }

    public init() {}

    public subscript(name: String) -> [Int32] { byName[name] ?? [] }

    /// Exactly one fd named `name`, or an error listing what was inherited.
    public func one(_ name: String) throws -> Int32 {
        let fds = self[name]
        guard fds.count == 1 else {
            let have = all.map { "\($0.name)=\($0.fd)" }.joined(separator: ", ")
            throw HandoffError.listenEnvironment("expected one fd named '\(name)', found \(fds.count) (inherited: \(have.isEmpty ? "none" : have))")
        }
        return fds[0]
    }
}
