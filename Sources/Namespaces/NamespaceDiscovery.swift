#if canImport(Glibc)
import Glibc
#endif
import CLinuxUAPI

/// What `NamespaceResolver.discover` found.
public struct NamespaceDiscovery: Sendable {
    /// Every network namespace, each once: the host's (PID 1's) first, then named ones by name,
    /// then the rest by inode.
    public var namespaces: [NetworkNamespace]
    /// Processes whose /proc/PID/ns/net could not be read (EACCES/EPERM): namespaces held only by
    /// them may be missing. 0 when running as root.
    public var inaccessibleProcesses: Int
}

extension NamespaceResolver {
    /// Finds every network namespace on the host, named or not, deduplicated by (st_dev, st_ino):
    /// - /run/netns/* (named by `ip netns`);
    /// - nsfs bind mounts of network namespaces in /proc/self/mountinfo (e.g. /run/docker/netns/*,
    ///   whose mountinfo root field reads "net:[INODE]");
    /// - /proc/PID/ns/net of every process, and with `includeThreads` also
    ///   /proc/PID/task/TID/ns/net (a thread may have called setns on its own).
    ///
    /// One fstatat(2) per process; processes that exit meanwhile are skipped.
    public func discover(includeThreads: Bool = false) throws -> NamespaceDiscovery {
        let (selfStat, selfErr) = NSFS.statPath(procRoot + "/self/ns/net")
        guard let selfStat else {
            if selfErr == ENOENT {
                throw NamespaceError(.unsupported, "\(procRoot)/self/ns/net does not exist: the kernel lacks network namespaces or /proc is not mounted", errno: selfErr)
            }
            throw NamespaceError.syscall("stat", path: procRoot + "/self/ns/net", errno: selfErr)
        }
        let nsfsDevice = UInt64(selfStat.st_dev)
        var found = Collector()

        for (name, identity) in NSFS.namedNamespaces(in: netnsDirectory, nsfsDevice: nsfsDevice) {
            found.add(identity, name: name, path: netnsDirectory + "/" + name, kind: .named)
        }
        for (mountPoint, inode) in Self.netnsMounts(procRoot + "/self/mountinfo") {
            found.add(NamespaceIdentity(device: nsfsDevice, inode: inode), name: nil, path: mountPoint, kind: .mount)
        }

        var host: NamespaceIdentity?
        var inaccessible = 0
        let procFD = Glibc.open(procRoot, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard procFD >= 0 else {
            throw NamespaceError.syscall("open", path: procRoot, errno: errno)
        }
        defer { close(procFD) }
        let scanner = DirectoryScanner()
        let taskScanner = DirectoryScanner(capacity: 16 * 1024)
        scanner.forEach(inDirectory: procFD) { name, len in
            guard let pid = parseDecimal(name, len) else { return }
            // readlink of /proc/PID/ns/net ("net:[INODE]") costs about half of a stat, which has
            // to resolve the nsfs inode; every nsfs inode lives on the one nsfs device.
            switch Self.netnsInode(procFD, id: pid) {
            case .success(let inode):
                let identity = NamespaceIdentity(device: nsfsDevice, inode: inode)
                if pid == 1 { host = identity }
                found.add(identity, name: nil, path: "\(procRoot)/\(pid)/ns/net", kind: .process)
            case .failure(let e) where e.code == EACCES || e.code == EPERM:
                inaccessible += 1
            case .failure:
                break
            }
            guard includeThreads else { return }
            let taskFD = openat(procFD, "\(pid)/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard taskFD >= 0 else { return }
            defer { close(taskFD) }
            taskScanner.forEach(inDirectory: taskFD) { tname, tlen in
                guard let tid = parseDecimal(tname, tlen), tid != pid else { return }
                if case .success(let inode) = Self.netnsInode(taskFD, id: tid) {
                    found.add(NamespaceIdentity(device: nsfsDevice, inode: inode), name: nil,
                              path: "\(procRoot)/\(pid)/task/\(tid)/ns/net", kind: .process)
                }
            }
        }
        if host == nil { host = hostIdentity(nsfsDevice: nsfsDevice) }
        return NamespaceDiscovery(namespaces: found.result(host: host), inaccessibleProcesses: inaccessible)
    }

    struct Errno: Error { let code: Int32 }

    /// The inode of the network namespace of process or thread `id`, from readlinkat(dirFD,
    /// "ID/ns/net"), which reads "net:[INODE]".
    static func netnsInode(_ dirFD: Int32, id: Int64) -> Result<UInt64, Errno> {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { buf -> Result<UInt64, Errno> in
            // "ID/ns/net\0" in buf[0..<32] without String interpolation (this runs once per process
            // on the host); the link text goes to buf[32...].
            var digits = 0
            var v = id
            repeat { digits += 1; v /= 10 } while v > 0
            guard digits <= 20 else { return .failure(Errno(code: EINVAL)) }
            v = id
            for k in stride(from: digits - 1, through: 0, by: -1) { buf[k] = UInt8(0x30 + v % 10); v /= 10 }
            var i = digits
            for c in "/ns/net".utf8 { buf[i] = c; i += 1 }
            buf[i] = 0
            let link = UnsafeMutableBufferPointer(rebasing: buf[32...])
            let n = buf.baseAddress!.withMemoryRebound(to: CChar.self, capacity: 64) { p in
                readlinkat(dirFD, p, p + 32, link.count)
            }
            if n < 0 { return .failure(Errno(code: errno)) }
            guard n > 6, Array(link[0..<5]) == Array("net:[".utf8), link[n - 1] == UInt8(ascii: "]") else {
                return .failure(Errno(code: EINVAL))
            }
            var inode: UInt64 = 0
            for c in link[5..<(n - 1)] {
                guard c >= 0x30 && c <= 0x39 else { return .failure(Errno(code: EINVAL)) }
                inode = inode &* 10 &+ UInt64(c - 0x30)
            }
            return .success(inode)
        }
    }

    /// Mount points of nsfs mounts whose root is a network namespace ("net:[INODE]"), from a
    /// mountinfo file (proc(5): ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS...] - FSTYPE SOURCE ...).
    static func netnsMounts(_ mountinfo: String) -> [(path: String, inode: UInt64)] {
        guard let f = fopen(mountinfo, "re") else { return [] }
        defer { fclose(f) }
        var out: [(String, UInt64)] = []
        var line: UnsafeMutablePointer<CChar>?
        var cap = 0
        defer { free(line) }
        while getline(&line, &cap, f) > 0 {
            // Most lines are other file systems: test the C text before making a String of it.
            guard strstr(line!, " - nsfs ") != nil else { continue }
            let text = String(cString: line!)
            let fields = text.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 5 else { continue }
            let root = fields[3]
            guard root.hasPrefix("net:["), root.hasSuffix("]"),
                  let inode = UInt64(root.dropFirst(5).dropLast()) else { continue }
            out.append((unescapeMountinfo(String(fields[4])), inode))
        }
        return out
    }

    /// mountinfo escapes space, tab, newline and backslash as \ooo octal.
    static func unescapeMountinfo(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var bytes: [UInt8] = []
        let u = Array(s.utf8)
        var i = 0
        while i < u.count {
            if u[i] == 0x5C, i + 3 < u.count {
                let digits = u[(i + 1)...(i + 3)]
                if digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x37 }) {
                    bytes.append(digits.reduce(0) { $0 &* 8 &+ ($1 - 0x30) })
                    i += 4
                    continue
                }
            }
            bytes.append(u[i])
            i += 1
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Gathers paths per identity while discovery runs, then orders them for opening:
/// /run/netns name, other bind mounts, then at most `maxProcessPaths` /proc paths.
private struct Collector {
    enum Kind { case named, mount, process }
    struct Entry {
        var name: String?
        var named: [String] = []
        var mounts: [String] = []
        var processes: [String] = []
    }
    static let maxProcessPaths = 3
    var entries: [NamespaceIdentity: Entry] = [:]

    /// Updates the identity's entry in place (no copy of its arrays per call); `path` is only
    /// built when it is kept (most processes share a namespace already seen).
    mutating func add(_ identity: NamespaceIdentity, name: String?, path: @autoclosure () -> String, kind: Kind) {
        Self.add(to: &entries[identity, default: Entry()], name: name, path: path, kind: kind)
    }

    private static func add(to e: inout Entry, name: String?, path: () -> String, kind: Kind) {
        switch kind {
        case .named:
            if e.name == nil { e.name = name }
            e.named.append(path())
        case .mount:
            let p = path()
            if !e.named.contains(p) && !e.mounts.contains(p) { e.mounts.append(p) }
        case .process:
            if e.processes.count < maxProcessPaths { e.processes.append(path()) }
        }
    }

    func result(host: NamespaceIdentity?) -> [NetworkNamespace] {
        let all = entries.map { identity, e in
            NetworkNamespace(identity: identity, name: e.name, paths: e.named + e.mounts + e.processes,
                             isHost: identity == host)
        }
        return all.sorted { a, b in
            if a.isHost != b.isHost { return a.isHost }
            switch (a.name, b.name) {
            case let (x?, y?): return Array(x.utf8).lexicographicallyPrecedes(Array(y.utf8))
            case (.some, .none): return true
            case (.none, .some): return false
            case (.none, .none): return a.identity < b.identity
            }
        }
    }
}
