#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The one error type of the Handoff module. Each case says what failed and where; `exitStatus`
/// maps it onto the CLI contract of DESIGN.md (2 usage/config, 3 permission or kernel support,
/// 4 partial failure).
public enum HandoffError: Error, CustomStringConvertible, Equatable {
    /// A `--listen` URL that does not parse; `position` names the part that is wrong.
    case badListenURL(url: String, reason: String)
    /// Any other configuration mistake (bad duration, bad --ready value, duplicate names, ...).
    case config(String)
    /// A syscall failed. `advice` is the operator-facing fix.
    case syscall(call: String, errno: Int32, context: String, advice: String?)
    /// The command to supervise cannot be run.
    case commandNotFound(String, reason: String)
    /// The LISTEN_FDS environment is malformed or meant for another process.
    case listenEnvironment(String)
    /// A peer spoke the control or fd-passing protocol wrongly.
    case proto(String)
    /// An operation the supervisor refused or that failed there (upgrade failed, busy, ...).
    case refused(String)
    /// The running kernel lacks what is asked for (a sysctl, a socket option).
    case unsupported(String)

    public var description: String {
        switch self {
        case let .badListenURL(url, reason):
            return "bad --listen URL '\(url)': \(reason)"
        case let .config(message):
            return message
        case let .syscall(call, err, context, advice):
            var s = "\(call)(\(context)) failed: \(String(cString: strerror(err))) (errno \(err))"
            if let advice { s += "; \(advice)" }
            return s
        case let .commandNotFound(cmd, reason):
            return "cannot run '\(cmd)': \(reason)"
        case let .listenEnvironment(message):
            return "LISTEN_FDS environment: \(message)"
        case let .proto(message):
            return "protocol error: \(message)"
        case let .refused(message):
            return message
        case let .unsupported(message):
            return message
        }
    }

    /// Exit status per DESIGN.md.
    public var exitStatus: Int32 {
        switch self {
        case .badListenURL, .config, .commandNotFound, .listenEnvironment: return 2
        case let .syscall(_, err, _, _):
            return (err == EACCES || err == EPERM) ? 3 : 2
        case .proto, .refused: return 4
        case .unsupported: return 3
        }
    }

    /// A syscall error with a fix for the common errnos.
    static func sys(_ call: String, _ context: String, errno err: Int32 = errno) -> HandoffError {
        let advice: String?
        switch err {
        case EADDRINUSE:
            advice = "another socket is bound there; stop it, pick another address, or add ?reuseport=1 on every listener of that port"
        case EACCES, EPERM:
            advice = "run as root or grant CAP_NET_BIND_SERVICE (ports < 1024) / check the path's permissions"
        case EADDRNOTAVAIL:
            advice = "the address is not configured on any interface of this network namespace"
        case ENOENT:
            advice = "the path does not exist (is the peer running?)"
        case ECONNREFUSED:
            advice = "nothing listens there (is the supervisor running under that name?)"
        case EMFILE, ENFILE:
            advice = "too many open files; raise RLIMIT_NOFILE (ulimit -n)"
        default:
            advice = nil
        }
        return .syscall(call: call, errno: err, context: context, advice: advice)
    }
}

/// Run a syscall, retrying EINTR; -1 becomes a `HandoffError.syscall` naming `call`.
@discardableResult
func retryingEINTR<T: BinaryInteger>(_ call: String, _ context: @autoclosure () -> String, _ body: () -> T) throws -> T {
    while true {
        let r = body()
        if r >= 0 { return r }
        let err = errno
        if err == EINTR { continue }
        throw HandoffError.sys(call, context(), errno: err)
    }
}
