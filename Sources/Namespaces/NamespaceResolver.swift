#if canImport(Glibc)
import Glibc
#endif
import CLinuxUAPI

/// Turns what a user typed after `--netns` into a `NetworkNamespace`, and finds every network
/// namespace on the host (`discover`, for `--all-netns`).
///
/// `--netns` forms, checked in this order:
/// - digits only: a pid, opened as /proc/PID/ns/net (to name a namespace called "123", give
///   /run/netns/123);
/// - anything containing "/": a path to an nsfs file (a /run/netns entry, a /proc/PID/ns/net link,
///   a bind mount such as /run/docker/netns/…);
/// - otherwise a name under /run/netns, as `ip netns` and `ss -N` use.
public struct NamespaceResolver: Sendable {
    /// Where `ip netns` keeps named namespaces.
    public var netnsDirectory: String
    /// The proc file system to scan (tests may point it elsewhere only for reading pids).
    public var procRoot: String

    public init(netnsDirectory: String = "/run/netns", procRoot: String = "/proc") {
        self.netnsDirectory = netnsDirectory
        self.procRoot = procRoot
    }

    /// Resolves one `--netns NAME|PATH|PID` argument. Errors (all `NamespaceError`):
    /// `.notFound` "no network namespace named 'x' (looked in /run/netns)", "no process with pid 123",
    /// "no such file '/p'"; `.notANetworkNamespace` "'/tmp/f' is not a network namespace file";
    /// `.invalidSpec` for "", ".", ".."; `.permissionDenied` when the file cannot be opened.
    public func resolve(_ spec: String) throws -> NetworkNamespace {
        if spec.isEmpty {
            throw NamespaceError(.invalidSpec, "empty --netns argument (give a name, a path or a pid)")
        }
        if spec.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            return try resolvePID(spec)
        }
        if spec.contains("/") {
            return try namespace(atPath: spec)
        }
        if spec == "." || spec == ".." {
            throw NamespaceError(.invalidSpec, "'\(spec)' is not a network namespace name")
        }
        let path = netnsDirectory + "/" + spec
        let (st, err) = NSFS.statPath(path)
        if st == nil {
            if err == ENOENT || err == ENOTDIR {
                throw NamespaceError(.notFound, "no network namespace named '\(spec)' (looked in \(netnsDirectory))", errno: err)
            }
            throw NamespaceError.syscall("stat", path: path, errno: err)
        }
        do {
            return try namespace(atPath: path)
        } catch let e as NamespaceError where e.kind == .notANetworkNamespace {
            // The file is there but nothing is mounted on it: `ip netns` leaves such files behind.
            throw NamespaceError(.notFound, "no network namespace named '\(spec)' (\(path) exists but no namespace is mounted on it)")
        }
    }

    /// Resolves repeated `--netns` arguments in order, dropping later ones that name a namespace
    /// already listed (by name, path and pid alike). The first error is thrown.
    public func resolveAll(_ specs: [String]) throws -> [NetworkNamespace] {
        var seen = Set<NamespaceIdentity>()
        var out: [NetworkNamespace] = []
        for spec in specs {
            let ns = try resolve(spec)
            if seen.insert(ns.identity).inserted { out.append(ns) }
        }
        return out
    }

    private func resolvePID(_ spec: String) throws -> NetworkNamespace {
        guard let pid = Int32(spec), pid > 0 else {
            throw NamespaceError(.notFound, "no process with pid \(spec)")
        }
        let dir = "\(procRoot)/\(pid)"
        let (st, err) = NSFS.statPath(dir)
        if st == nil {
            var hint = ""
            if NSFS.statPath(netnsDirectory + "/" + spec).0 != nil {
                hint = " (for the namespace named '\(spec)' give \(netnsDirectory)/\(spec))"
            }
            if err == ENOENT || err == ESRCH {
                throw NamespaceError(.notFound, "no process with pid \(pid)\(hint)", errno: err)
            }
            throw NamespaceError.syscall("stat", path: dir, errno: err)
        }
        do {
            return try namespace(atPath: dir + "/ns/net")
        } catch let e as NamespaceError where e.kind == .notFound {
            throw NamespaceError(.notFound, "no process with pid \(pid) (it exited)", errno: e.errno)
        }
    }

    /// The namespace an nsfs path refers to, validated (nsfs + NS_GET_NSTYPE == CLONE_NEWNET) and
    /// labelled by its /run/netns name when it has one; that name's path is preferred for opening.
    public func namespace(atPath path: String) throws -> NetworkNamespace {
        let (fd, st) = try NSFS.openNetNS(path)
        close(fd)
        let identity = NamespaceIdentity(st)
        let named = NSFS.namedNamespaces(in: netnsDirectory, nsfsDevice: identity.device)
        var paths: [String] = []
        var name: String?
        if let hit = named.first(where: { $0.identity == identity }) {
            name = hit.name
            paths.append(netnsDirectory + "/" + hit.name)
        }
        if !paths.contains(path) { paths.append(path) }
        return NetworkNamespace(identity: identity, name: name, paths: paths, isHost: identity == hostIdentity())
    }

    /// Every namespace named in `netnsDirectory`, each once (labelled by its first name in byte
    /// order), in name order: one pass over the directory. Resolving each name with `resolve` would
    /// list the directory again per name, which a daemon rescanning hundreds of namespaces every
    /// few seconds cannot afford. Stale files (nothing mounted) and other namespace types are skipped.
    public func named() -> [NetworkNamespace] {
        guard let device = NSFS.statPath(procRoot + "/self/ns/net").0.map({ UInt64($0.st_dev) }) else { return [] }
        let host = hostIdentity(nsfsDevice: device)
        var seen = Set<NamespaceIdentity>()
        return NSFS.namedNamespaces(in: netnsDirectory, nsfsDevice: device).compactMap { name, identity in
            guard seen.insert(identity).inserted else { return nil }
            return NetworkNamespace(identity: identity, name: name, paths: [netnsDirectory + "/" + name], isHost: identity == host)
        }
    }

    /// Identity of the host's (initial) network namespace: PID 1's when /proc/1/ns/net can be read;
    /// otherwise, on kernels that give the initial namespace the fixed inode NET_NS_INIT_INO
    /// (Linux 6.18+), that inode on nsfs. nil when neither works.
    func hostIdentity(nsfsDevice: UInt64? = nil) -> NamespaceIdentity? {
        if let st = NSFS.statPath(procRoot + "/1/ns/net").0 { return NamespaceIdentity(st) }
        let device = nsfsDevice ?? NSFS.statPath(procRoot + "/self/ns/net").0.map { UInt64($0.st_dev) }
        guard let device else { return nil }
        return NamespaceIdentity(device: device, inode: UInt64(sockctl_NET_NS_INIT_INO))
    }
}

extension NetworkNamespace {
    /// `NamespaceResolver().resolve(spec)`.
    public static func resolve(_ spec: String) throws -> NetworkNamespace {
        try NamespaceResolver().resolve(spec)
    }

    /// `NamespaceResolver().discover().namespaces`: every network namespace on the host.
    public static func discoverAll(includeThreads: Bool = false) throws -> [NetworkNamespace] {
        try NamespaceResolver().discover(includeThreads: includeThreads).namespaces
    }
}
