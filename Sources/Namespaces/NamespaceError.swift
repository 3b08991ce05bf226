#if canImport(Glibc)
import Glibc
#endif

/// The one error type of the Namespaces target. `description` is a single line naming what was
/// wrong and why; `kind` tells the CLI which exit status to use (see `exitStatus`).
public struct NamespaceError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// `--netns` names nothing: no /run/netns entry, no such pid, no such file. Exit 2.
        case notFound
        /// The file exists but is not a network namespace (not nsfs, or another CLONE_NEW* type). Exit 2.
        case notANetworkNamespace
        /// The `--netns` argument itself is malformed (empty, "." or ".."). Exit 2.
        case invalidSpec
        /// EACCES / EPERM opening a namespace file or calling setns(2). Exit 3.
        case permissionDenied
        /// The kernel lacks what is needed (no nsfs ioctl, no network namespaces). Exit 3.
        case unsupported
        /// A namespace found earlier is gone (its last process exited, it was deleted). Exit 4 when
        /// other namespaces succeeded.
        case vanished
        /// The caller stopped a streaming run; producers see this from `emit`.
        case cancelled
        /// Any other failing syscall.
        case system
    }

    public let kind: Kind
    public let message: String
    /// errno of the failing syscall, when there was one.
    public let errno: Int32?

    public init(_ kind: Kind, _ message: String, errno: Int32? = nil) {
        self.kind = kind
        self.message = message
        self.errno = errno
    }

    public var description: String { message }

    /// True for errors caused by what the user typed (DESIGN.md exit status 2).
    public var isUsageError: Bool {
        kind == .notFound || kind == .notANetworkNamespace || kind == .invalidSpec
    }

    /// The DESIGN.md exit status this error suggests on its own: 2 usage, 3 permission or kernel
    /// support missing, 4 otherwise (a failure among others that may have worked).
    public var exitStatus: Int32 {
        switch kind {
        case .notFound, .notANetworkNamespace, .invalidSpec: return 2
        case .permissionDenied, .unsupported: return 3
        case .vanished, .cancelled, .system: return 4
        }
    }

    /// Maps a failed syscall on `path` to an error: EACCES/EPERM become `.permissionDenied` with the
    /// fix, ENOENT `.notFound`, the rest `.system`; `what` names the call ("open", "setns(CLONE_NEWNET)").
    static func syscall(_ what: String, path: String, errno err: Int32) -> NamespaceError {
        let text = String(cString: strerror(err))
        switch err {
        case EACCES, EPERM:
            return NamespaceError(
                .permissionDenied,
                "\(what) \(path): \(text) (needs root or CAP_SYS_ADMIN and CAP_SYS_PTRACE)", errno: err)
        case ENOENT, ESRCH:
            return NamespaceError(.notFound, "\(what) \(path): \(text)", errno: err)
        default:
            return NamespaceError(.system, "\(what) \(path): \(text)", errno: err)
        }
    }
}
