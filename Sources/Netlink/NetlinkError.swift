#if canImport(Glibc)
import Glibc
#endif

/// The one error netlink operations throw: which operation, the errno, the kernel's
/// extended-ack text when it sent one, and advice for the errors a user can fix.
public struct NetlinkError: Error, CustomStringConvertible, Equatable {
    /// The syscall or request that failed (`socket`, `sendmsg`, `recvmsg`, `SOCK_DIAG_BY_FAMILY`, `SOCK_DESTROY`...).
    public var operation: String
    /// A positive errno value (0 when the failure is not an errno, e.g. a malformed reply).
    public var code: Int32
    /// Extended-ack message from the kernel, or our own detail.
    public var detail: String?
    public var sequence: UInt32?

    public init(operation: String, code: Int32, detail: String? = nil, sequence: UInt32? = nil) {
        self.operation = operation
        self.code = code
        self.detail = detail
        self.sequence = sequence
    }

    public var isPermission: Bool { code == EPERM || code == EACCES }
    public var isNotSupported: Bool { code == EOPNOTSUPP || code == ENOTSUP || code == EPROTONOSUPPORT || code == ENOENT && operation == "socket" }

    /// errno's own text (strerror).
    public var errnoText: String { code == 0 ? "protocol error" : String(cString: strerror(code)) }

    public var description: String {
        var s = "\(operation): \(errnoText)"
        if let d = detail, !d.isEmpty { s += " (\(d))" }
        return s
    }
}
