#if canImport(Glibc)
import Glibc
#endif
import CLinuxUAPI

/// An open listening (or bound UDP) socket and the name it is passed under.
///
/// O_NONBLOCK lives on the open file description, which every generation shares: the supervisor
/// sets it once at open (`?nonblock=1`) and never changes it while a generation runs.
public struct Listener: Equatable {
    public var name: String
    public var fd: Int32
    /// The spec it was opened from; nil for one inherited without a matching --listen.
    public var spec: ListenerSpec?
    public var inherited = false

    public init(name: String, fd: Int32, spec: ListenerSpec?, inherited: Bool = false) {
        self.name = name
        self.fd = fd
        self.spec = spec
        self.inherited = inherited
    }

    /// Open, bind and listen per `spec`. Nothing is left open on failure.
    public static func open(_ spec: ListenerSpec) throws -> Listener {
        let ctx = spec.url
        let type = (spec.kind == .udp ? Int32(SOCK_DGRAM.rawValue) : Int32(SOCK_STREAM.rawValue)) | Int32(SOCK_CLOEXEC.rawValue)
            | (spec.nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0)
        let family: Int32 = spec.kind == .unix ? AF_UNIX : (spec.isIPv6 ? AF_INET6 : AF_INET)
        let fd = try retryingEINTR("socket", ctx) { socket(family, type, 0) }
        do {
            var one: Int32 = 1
            if spec.kind != .unix {
                try setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR", ctx)
                if spec.reusePort { try setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT", ctx) }
                if let v6 = spec.v6Only { try setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, v6 ? 1 : 0, "IPV6_V6ONLY", ctx) }
            }
            _ = one
            one = 0
            switch spec.kind {
            case .unix:
                try prepareUnixPath(spec)
                var sa = sockaddr_un()
                let len = sockctl_sockaddr_un(&sa, spec.address)
                guard len > 0 else { throw HandoffError.sys("bind", ctx) }
                try withUnsafePointer(to: &sa) { p in
                    try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sp in
                        try retryingEINTR("bind", ctx) { bind(fd, sp, socklen_t(len)) }
                    }
                }
                if let mode = spec.mode { try retryingEINTR("chmod", spec.address) { chmod(spec.address, mode_t(mode)) } }
            default:
                try InetAddress(spec.address, port: spec.port).withSockaddr { sp, len in
                    try retryingEINTR("bind", ctx) { bind(fd, sp, len) }
                }
            }
            if spec.kind != .udp {
                try retryingEINTR("listen", ctx) { listen(fd, spec.backlog) }
            }
        } catch {
            close(fd)
            throw error
        }
        return Listener(name: spec.name, fd: fd, spec: spec)
    }

    /// A unix path that exists: a socket nobody accepts on is stale and removed; a live one is
    /// "address in use"; anything else is refused.
    static func prepareUnixPath(_ spec: ListenerSpec) throws {
        guard !spec.address.hasPrefix("@") else { return }
        var st = stat()
        guard lstat(spec.address, &st) == 0 else { return }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw HandoffError.config("--listen \(spec.url): \(spec.address) exists and is not a socket; remove it or pick another path")
        }
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(probe) }
        var sa = sockaddr_un()
        let len = sockctl_sockaddr_un(&sa, spec.address)
        let r = withUnsafePointer(to: &sa) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, socklen_t(len)) }
        }
        if r == 0 {
            throw HandoffError.syscall(call: "bind", errno: EADDRINUSE, context: spec.url,
                                       advice: "a live process accepts on \(spec.address); stop it or pick another path")
        }
        unlink(spec.address)
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32, _ label: String, _ ctx: String) throws {
        var v = value
        try retryingEINTR("setsockopt", "\(label), \(ctx)") { setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) }
    }

    /// Clear or set O_NONBLOCK on the shared file description.
    public static func setNonBlocking(_ fd: Int32, _ on: Bool) throws {
        let flags = try retryingEINTR("fcntl", "F_GETFL") { fcntl(fd, F_GETFL) }
        let new = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        if new != flags { try retryingEINTR("fcntl", "F_SETFL") { fcntl(fd, F_SETFL, new) } }
    }
}

/// A numeric IPv4/IPv6 address and port as a sockaddr.
public struct InetAddress {
    public var host: String
    public var port: UInt16

    public init(_ host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    public func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) throws -> R {
        if host.contains(":") {
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = port.bigEndian
            guard inet_pton(AF_INET6, host, &sa.sin6_addr) == 1 else { throw HandoffError.config("'\(host)' is not an IPv6 address") }
            return try withUnsafePointer(to: &sa) { p in
                try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &sa.sin_addr) == 1 else { throw HandoffError.config("'\(host)' is not an IPv4 address") }
        return try withUnsafePointer(to: &sa) { p in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }

    /// The local address of a bound inet socket (getsockname), e.g. to learn a kernel-chosen port.
    public static func local(of fd: Int32) -> InetAddress? {
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let r = withUnsafeMutablePointer(to: &ss) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard r == 0 else { return nil }
        var buf = [CChar](repeating: 0, count: 64)
        switch Int32(ss.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &ss) { p in
                p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    var a = sin.pointee.sin_addr
                    inet_ntop(AF_INET, &a, &buf, 64)
                    return InetAddress(String(cString: buf), port: UInt16(bigEndian: sin.pointee.sin_port))
                }
            }
        case AF_INET6:
            return withUnsafePointer(to: &ss) { p in
                p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin in
                    var a = sin.pointee.sin6_addr
                    inet_ntop(AF_INET6, &a, &buf, 64)
                    return InetAddress(String(cString: buf), port: UInt16(bigEndian: sin.pointee.sin6_port))
                }
            }
        default: return nil
        }
    }
}
