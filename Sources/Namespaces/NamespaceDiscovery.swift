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
        var st = stat()
        scanner.forEach(inDirectory: procFD) { name, len in
            guard let pid = parseDecimal(name, len) else { return }
            let rel = "\(pid)/ns/net"
            if fstatat(procFD, rel, &st, 0) == 0 {
                let identity = NamespaceIdentity(st)
                if pid == 1 { host = identity }
                found.add(identity, name: nil, path: "\(procRoot)/\(rel)", kind: .process)
            } else if errno == EACCES || errno == EPERM {
                inaccessible += 1
            }
            guard includeThreads else { return }
            let taskFD = openat(procFD, "\(pid)/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard taskFD >= 0 else { return }
            defer { close(taskFD) }
            taskScanner.forEach(inDirectory: taskFD) { tname, tlen in
                guard let tid = parseDecimal(tname, tlen), tid != pid else { return }
                let trel = "\(tid)/ns/net"
                if fstatat(taskFD, trel, &st, 0) == 0 {
                    found.add(NamespaceIdentity(st), name: nil, path: "\(procRoot)/\(pid)/task/\(trel)", kind: .process)
                }
            }
        }
        if host == nil { host = hostIdentity(nsfsDevice: nsfsDevice) }
        return NamespaceDiscovery(namespaces: found.result(host: host), inaccessibleProcesses: inaccessible)
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
            let text = String(cString: line!)
            guard text.contains(" - nsfs ") else { continue }
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

    mutating func add(_ identity: NamespaceIdentity, name: String?, path: String, kind: Kind) {
        var e = entries[identity] ?? Entry()
        switch kind {
        case .named:
            if e.name == nil { e.name = name }
            e.named.append(path)
        case .mount:
            if !e.named.contains(path) && !e.mounts.contains(path) { e.mounts.append(path) }
        case .process:
            if e.processes.count < Self.maxProcessPaths { e.processes.append(path) }
        }
        entries[identity] = e
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
