#if canImport(Glibc)
import Glibc
#endif
import CLinuxUAPI
import Foundation

/// Everything the supervisor asks of the operating system about processes, as a struct of
/// functions (after tableflip's `env`): the real ones here, fakes in unit tests.
public struct ProcessEnvironment {
    /// Start `path` with `argv`, `env` and `fds` as 3...; LISTEN_PID is set to the child's pid.
    public var spawn: (_ path: String, _ argv: [String], _ env: [String: String], _ fds: [Int32]) throws -> Int32
    /// kill(2).
    public var kill: (_ pid: Int32, _ signal: Int32) -> Void
    /// Monotonic seconds.
    public var now: () -> Double
    /// The supervisor's own environment.
    public var environment: () -> [String: String]
    /// Reap one exited child without blocking: its pid and wait status, or nil when none is left
    /// to reap (waitpid(-1, WNOHANG)).
    public var reap: () -> (pid: Int32, status: Int32)?
    /// One attempt of a tcp (path nil) or http readiness check.
    public var probe: (_ host: String, _ port: UInt16, _ httpPath: String?) -> Bool

    public init(spawn: @escaping (_ path: String, _ argv: [String], _ env: [String: String], _ fds: [Int32]) throws -> Int32,
                kill: @escaping (_ pid: Int32, _ signal: Int32) -> Void,
                now: @escaping () -> Double,
                environment: @escaping () -> [String: String],
                reap: @escaping () -> (pid: Int32, status: Int32)?,
                probe: @escaping (_ host: String, _ port: UInt16, _ httpPath: String?) -> Bool) {
        self.spawn = spawn
        self.kill = kill
        self.now = now
        self.environment = environment
        self.reap = reap
        self.probe = probe
    }

    public static let live = ProcessEnvironment(
        spawn: { path, argv, env, fds in
            var envList = env.filter { $0.key != "LISTEN_PID" }.map { "\($0.key)=\($0.value)" }.sorted()
            var slot: Int32 = -1
            if !fds.isEmpty {
                slot = Int32(envList.count)
                envList.append("LISTEN_PID=")
            }
            var err: Int32 = 0
            let pid = withCStrings(argv) { cargv in
                withCStrings(envList) { cenv in
                    sockctl_spawn_with_fds(path, cargv, cenv, slot, fds, Int32(fds.count), &err)
                }
            }
            guard pid > 0 else {
                if err == ENOENT || err == EACCES || err == ENOEXEC {
                    throw HandoffError.commandNotFound(path, reason: "execve: \(String(cString: strerror(err)))")
                }
                throw HandoffError.sys("fork/execve", path, errno: err)
            }
            return pid
        },
        kill: { pid, sig in _ = Glibc.kill(pid, sig) },
        now: {
            var ts = timespec()
            clock_gettime(CLOCK_MONOTONIC, &ts)
            return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
        },
        environment: { ProcessInfo.processInfo.environment },
        reap: {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            return pid > 0 ? (pid, status) : nil
        },
        probe: { host, port, path in Readiness.probe(host: host, port: port, httpPath: path) }
    )

    /// Resolve a command name as execvp(3) would: a name with '/' as is, else the first executable
    /// file in PATH. Errors say where it looked.
    public static func resolveCommand(_ name: String, path: String?) throws -> String {
        func executable(_ p: String) -> Bool {
            var st = stat()
            return stat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && access(p, X_OK) == 0
        }
        if name.contains("/") {
            guard access(name, F_OK) == 0 else { throw HandoffError.commandNotFound(name, reason: "no such file") }
            guard executable(name) else { throw HandoffError.commandNotFound(name, reason: "not an executable file") }
            return name
        }
        let dirs = (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":").map(String.init)
        for dir in dirs where executable(dir + "/" + name) { return dir + "/" + name }
        throw HandoffError.commandNotFound(name, reason: "not found in PATH (\(dirs.joined(separator: ":")))")
    }
}

func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    var ptrs: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    ptrs.append(nil)
    defer { ptrs.forEach { free($0) } }
    return ptrs.withUnsafeBufferPointer { body($0.baseAddress!) }
}
