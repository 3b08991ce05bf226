import Glibc

/// Why the BPF backend cannot run or a destroy failed. `description` is the message for the user;
/// `isUnsupported` tells `--backend auto` to fall back to netlink (exit status 3 when forced).
public enum BPFError: Error, CustomStringConvertible, Equatable, Sendable {
    /// dlopen("libbpf.so.1") failed.
    case libbpfMissing(detail: String)
    /// libbpf.so.1 lacks a symbol sockctl needs.
    case libbpfSymbolMissing(name: String)
    /// libbpf_major_version() is not 1.
    case libbpfVersion(major: UInt32, minor: UInt32)
    /// The running kernel's BTF has no `bpf_sock_destroy` kfunc (Linux < 6.5, or no BTF).
    case kernelLacksSockDestroy(detail: String)
    /// A libbpf or bpf(2) step failed; `errno` is positive.
    case kernel(operation: String, errno: Int32, detail: String)
    /// The spec cannot be expressed (too many clauses, bad prefix, ...).
    case invalidSpec(String)

    public var description: String {
        switch self {
        case .libbpfMissing(let detail):
            return "libbpf.so.1 not found: install libbpf1 (\(detail))"
        case .libbpfSymbolMissing(let name):
            return "libbpf.so.1 has no symbol \(name): install libbpf1 version 1.1 or newer"
        case .libbpfVersion(let major, let minor):
            return "libbpf.so.1 reports version \(major).\(minor); sockctl needs libbpf 1.x"
        case .kernelLacksSockDestroy(let detail):
            return "kernel lacks bpf_sock_destroy (needs Linux 6.5+ with BTF): \(detail)"
        case .kernel(let operation, let errno, let detail):
            var text = "\(operation) failed: \(String(cString: strerror(errno))) (errno \(errno))"
            if (errno == EPERM || errno == EACCES) && operation.hasPrefix("bpf") {
                text += "; loading and running BPF programs needs CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN (or root)"
            }
            if !detail.isEmpty { text += "\n" + detail }
            return text
        case .invalidSpec(let why):
            return "BPF destroy filter: \(why)"
        }
    }

    /// True when the machine cannot run the BPF backend at all (as opposed to a failed request).
    public var isUnsupported: Bool {
        switch self {
        case .libbpfMissing, .libbpfSymbolMissing, .libbpfVersion, .kernelLacksSockDestroy: return true
        case .kernel(_, let e, _): return e == EPERM || e == EACCES || e == ENOSYS
        case .invalidSpec: return false
        }
    }
}
