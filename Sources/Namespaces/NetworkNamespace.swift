#if canImport(Glibc)
import Glibc
#endif
import CLinuxUAPI

/// Identity of a namespace: the (st_dev, st_ino) pair of its nsfs inode, as stat(2) reports it for
/// /proc/PID/ns/net or for a bind mount of it. Two paths name the same namespace exactly when their
/// identities are equal.
public struct NamespaceIdentity: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// st_dev of the nsfs inode (the same for every namespace of one kernel).
    public let device: UInt64
    /// st_ino of the nsfs inode; what `ip netns identify`, `lsns` and readlink ("net:[N]") show.
    public let inode: UInt64

    public init(device: UInt64, inode: UInt64) {
        self.device = device
        self.inode = inode
    }

    init(_ st: stat) {
        self.init(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    /// The identity of the namespace file at `path` (e.g. /proc/1/ns/user), nil when it cannot be
    /// stat'ed.
    public init?(path: String) {
        guard let st = NSFS.statPath(path).0 else { return nil }
        self.init(st)
    }

    public static func < (a: Self, b: Self) -> Bool {
        (a.device, a.inode) < (b.device, b.inode)
    }

    public var description: String { "net:[\(inode)]" }
}

/// One network namespace: who it is (`identity`), what to call it in output (`label`), and how to
/// open it (`paths`, preferred first).
///
/// Values carry paths, not open descriptors, so they can be copied freely and a discovery of a
/// thousand namespaces does not hold a thousand fds. `open()` tries each path and keeps the first
/// whose inode is still this namespace, so a recycled pid never sends work into the wrong one.
public struct NetworkNamespace: Hashable, Sendable, CustomStringConvertible {
    public let identity: NamespaceIdentity
    /// Its name under /run/netns (`ip netns`), when it has one (the first in byte order if several).
    public let name: String?
    /// Paths that referred to it when it was found: /run/netns/NAME first, then other bind mounts,
    /// then /proc/PID/ns/net of a few processes inside it.
    public let paths: [String]
    /// True for the host's initial namespace: PID 1's, or when /proc/1 cannot be read, the one with
    /// the kernel's fixed NET_NS_INIT_INO inode (Linux 6.18+).
    public let isHost: Bool

    public init(identity: NamespaceIdentity, name: String?, paths: [String], isHost: Bool) {
        precondition(!paths.isEmpty, "a namespace needs at least one path to open it")
        self.identity = identity
        self.name = name
        self.paths = paths
        self.isHost = isHost
    }

    /// The nsfs inode number.
    public var inode: UInt64 { identity.inode }

    /// The DESIGN.md `netns` field: the /run/netns name, otherwise `ino:N`. The host's namespace is
    /// labelled the same way (by name if it has one); use `isHost` to mark it differently.
    public var label: String { name ?? "ino:\(identity.inode)" }

    /// The preferred path to open it.
    public var path: String { paths[0] }

    public var description: String { "\(label) (\(path))" }

    public static func == (a: Self, b: Self) -> Bool { a.identity == b.identity }
    public func hash(into h: inout Hasher) { h.combine(identity) }

    /// Opens the namespace: the first of `paths` that still refers to `identity`. Returns an
    /// O_RDONLY|O_CLOEXEC descriptor the caller must close. Throws `.vanished` when no path leads to
    /// it any more, `.permissionDenied` when one exists but cannot be opened.
    public func open() throws -> Int32 {
        var firstDenied: NamespaceError?
        for p in paths {
            let fd = Glibc.open(p, O_RDONLY | O_CLOEXEC)
            if fd < 0 {
                let err = Glibc.errno
                if (err == EACCES || err == EPERM) && firstDenied == nil {
                    firstDenied = .syscall("open", path: p, errno: err)
                }
                continue
            }
            var st = stat()
            if fstat(fd, &st) == 0 && NamespaceIdentity(st) == identity {
                return fd
            }
            close(fd)
        }
        if let denied = firstDenied { throw denied }
        throw NamespaceError(
            .vanished,
            "network namespace \(label) is gone (none of \(paths.joined(separator: ", ")) refers to net:[\(inode)] any more)")
    }

    /// Identity of the user namespace that owns this network namespace (ioctl NS_GET_USERNS).
    /// Capability checks on its sockets (e.g. CAP_NET_ADMIN for SOCK_DESTROY) are made against that
    /// user namespace, so namespaces with the same owner give the same answer. nil when it cannot be
    /// told (the namespace vanished, or its owner is outside our user namespace).
    public func ownerUserNamespace() -> NamespaceIdentity? {
        guard let fd = try? open() else { return nil }
        defer { close(fd) }
        let user = sockctl_ns_get_userns(fd)
        guard user >= 0 else { return nil }
        defer { close(user) }
        var st = stat()
        guard fstat(user, &st) == 0 else { return nil }
        return NamespaceIdentity(st)
    }

    /// Whether the calling thread holds CAP_NET_ADMIN (effective) in the initial user namespace.
    /// The kernel checks a capability over a namespace against the user namespace that owns it and
    /// walks up its ancestors to the caller's (cap_capable). Every user namespace descends from
    /// the initial one, so such a caller has CAP_NET_ADMIN over the sockets of every network
    /// namespace on the host, whoever owns it: one destroy probe answers for all of them.
    public static func callerHasNetAdminEverywhere() -> Bool {
        guard sockctl_has_effective_capability(sockctl_CAP_NET_ADMIN) == 1 else { return false }
        var buf = [CChar](repeating: 0, count: 64)
        let n = readlink("/proc/thread-self/ns/user", &buf, buf.count - 1)
        guard n > 0 else { return false }
        let text = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text == "user:[\(sockctl_USER_NS_INIT_INO)]"
    }

    /// The namespace of the calling thread (/proc/thread-self/ns/net), labelled like `discoverAll`.
    public static func current() throws -> NetworkNamespace {
        let processPath = "/proc/\(getpid())/ns/net"
        let threadPath = "/proc/\(getpid())/task/\(sockctl_gettid())/ns/net"
        let (mine, _) = NSFS.statPath("/proc/thread-self/ns/net")
        let (process, _) = NSFS.statPath(processPath)
        if let mine, let process, NamespaceIdentity(mine) == NamespaceIdentity(process) {
            return try NamespaceResolver().namespace(atPath: processPath)
        }
        return try NamespaceResolver().namespace(atPath: threadPath)
    }
}

/// Low-level helpers shared by the resolver and discovery.
enum NSFS {
    /// stat(2) following links; nil with errno on failure.
    static func statPath(_ path: String) -> (stat?, Int32) {
        var st = Glibc.stat()
        if stat(path, &st) == 0 { return (st, 0) }
        return (nil, Glibc.errno)
    }

    /// Opens `path` and checks that it is a network namespace file: nsfs (statfs f_type NSFS_MAGIC)
    /// and NS_GET_NSTYPE == CLONE_NEWNET. Returns the open fd and its stat.
    static func openNetNS(_ path: String) throws -> (fd: Int32, st: stat) {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let err = Glibc.errno
            if err == ENOENT {
                throw NamespaceError(.notFound, "no such file '\(path)'", errno: err)
            }
            throw NamespaceError.syscall("open", path: path, errno: err)
        }
        let fsType = sockctl_fstatfs_type(fd)
        if fsType == -1 {
            let err = Glibc.errno
            close(fd)
            throw NamespaceError.syscall("fstatfs", path: path, errno: err)
        }
        if fsType != sockctl_NSFS_MAGIC {
            close(fd)
            throw NamespaceError(.notANetworkNamespace, "'\(path)' is not a network namespace file (not on nsfs)")
        }
        let type = sockctl_ns_get_nstype(fd)
        if type < 0 {
            let err = Glibc.errno
            close(fd)
            if err == ENOTTY || err == EINVAL {
                throw NamespaceError(.unsupported, "ioctl(NS_GET_NSTYPE) on \(path): not supported by this kernel (needs Linux 4.11+)", errno: err)
            }
            throw NamespaceError.syscall("ioctl(NS_GET_NSTYPE)", path: path, errno: err)
        }
        if type != sockctl_CLONE_NEWNET {
            close(fd)
            throw NamespaceError(.notANetworkNamespace, "'\(path)' is not a network namespace file (it is a \(typeName(type)) namespace)")
        }
        var st = Glibc.stat()
        guard fstat(fd, &st) == 0 else {
            let err = Glibc.errno
            close(fd)
            throw NamespaceError.syscall("fstat", path: path, errno: err)
        }
        return (fd, st)
    }

    static func typeName(_ t: Int32) -> String {
        switch t {
        case 0x0002_0000: return "mount"
        case 0x0200_0000: return "cgroup"
        case 0x0400_0000: return "uts"
        case 0x0800_0000: return "ipc"
        case 0x1000_0000: return "user"
        case 0x2000_0000: return "pid"
        case 0x0000_0080: return "time"
        default: return "type \(t)"
        }
    }

    /// Names under /run/netns by identity (the first name in byte order wins when one namespace
    /// has several). Entries that are not nsfs inodes (a stale file whose mount is gone) are skipped.
    static func namedNamespaces(in dir: String, nsfsDevice: UInt64) -> [(name: String, identity: NamespaceIdentity)] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [(String, NamespaceIdentity)] = []
        while let ent = readdir(d) {
            let name = withUnsafeBytes(of: ent.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name == "." || name == ".." { continue }
            let (st, _) = statPath(dir + "/" + name)
            guard let st, UInt64(st.st_dev) == nsfsDevice else { continue }
            // A bind mount of another namespace type under /run/netns is not ours to list.
            guard let (fd, _) = try? openNetNS(dir + "/" + name) else { continue }
            close(fd)
            out.append((name, NamespaceIdentity(st)))
        }
        out.sort { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }
        return out
    }
}
