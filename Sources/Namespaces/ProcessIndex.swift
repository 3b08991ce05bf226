#if canImport(Glibc)
import Glibc
#endif

/// A process holding a socket: what `ss -p` prints as users:(("comm",pid=P,fd=F)).
public struct SocketOwner: Hashable, Sendable, CustomStringConvertible {
    public let pid: Int32
    /// /proc/PID/comm: the thread group leader's name, at most 15 bytes.
    public let comm: String
    /// The descriptor number in that process.
    public let fd: Int32

    public init(pid: Int32, comm: String, fd: Int32) {
        self.pid = pid
        self.comm = comm
        self.fd = fd
    }

    public var description: String { "(\"\(comm)\",pid=\(pid),fd=\(fd))" }
}

/// Socket inode -> the processes and descriptors that hold it, built by scanning /proc/PID/fd/* of
/// every process once (the `-p` of `ss`, done leaner).
///
/// Socket inodes are the sockfs inode numbers that sock_diag reports (`inet_diag_msg.idiag_inode`,
/// `unix_diag_msg.udiag_ino`); they are unique host-wide, so one index serves every namespace.
///
/// The scan: getdents64 over /proc for pids, then per process openat("PID/fd"), getdents64, and
/// readlinkat(dirfd, "N") into a stack-sized buffer whose bytes are matched against
/// "socket:[INODE]" directly (no String per descriptor). /proc/PID/task/* is not scanned: threads
/// share their process's descriptor table. comm is read once per process, only when it holds a
/// socket that is kept. Processes that exit during the scan (ENOENT) and ones we may not inspect
/// (EACCES, counted in `inaccessibleProcesses`) are skipped; kernel threads have no descriptors.
public struct ProcessIndex: Sendable {
    // Entries stored column-wise; chained per inode through `next` (-1 ends a chain).
    private var head: [UInt64: Int32] = [:]
    private var next: [Int32] = []
    private var pids: [Int32] = []
    private var fds: [Int32] = []
    private var commIndex: [Int32] = []
    private var comms: [String] = []

    /// Processes whose /proc/PID/fd could be read.
    public private(set) var processesScanned = 0
    /// Processes skipped because /proc/PID/fd was not readable to us (EACCES/EPERM).
    public private(set) var inaccessibleProcesses = 0
    /// readlinkat(2) calls made (one per descriptor of every scanned process).
    public private(set) var descriptorsRead = 0

    /// An empty index.
    public init() {}

    /// Scanning threads used by default: the online CPUs, at most 4. The scan is bound by the
    /// kernel's per-descriptor work (about 3 µs a readlinkat here), so it scales with cores.
    public static var defaultThreads: Int {
        max(1, min(4, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
    }

    /// Scans /proc. With `wanted`, only those socket inodes are kept (the rest are still read, but
    /// not stored), e.g. the inodes a dump returned. `threads` > 1 splits the processes among that
    /// many scanning threads, one process at a time each; the result does not depend on it.
    public static func build(wanted: Set<UInt64>? = nil, threads: Int = defaultThreads, procRoot: String = "/proc") throws -> ProcessIndex {
        let procFD = open(procRoot, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard procFD >= 0 else { throw NamespaceError.syscall("open", path: procRoot, errno: errno) }
        defer { close(procFD) }

        var pidList: [Int32] = []
        pidList.reserveCapacity(4096)
        let scanner = DirectoryScanner()
        let err = scanner.forEach(inDirectory: procFD) { name, len in
            if let pid = parseDecimal(name, len), pid <= Int64(Int32.max) { pidList.append(Int32(pid)) }
        }
        if err != 0 { throw NamespaceError.syscall("getdents64", path: procRoot, errno: err) }

        let workers = max(1, min(threads, pidList.count / 8 + 1))
        if workers == 1 {
            var part = Partial(wanted: wanted)
            part.scan(procFD: procFD, pids: pidList[...], next: nil)
            return ProcessIndex(parts: [part])
        }
        let cursor = Cursor(pidList.count)
        var parts = [Partial?](repeating: nil, count: workers)
        try parts.withUnsafeMutableBufferPointer { out in
            let base = out.baseAddress!
            var started: [POSIXThread] = []
            defer { for t in started { t.join() } }
            for w in 0..<workers {
                let slot = base + w
                started.append(try POSIXThread.start(name: "sockctl-procidx") {
                    var part = Partial(wanted: wanted)
                    part.scan(procFD: procFD, pids: pidList[...], next: cursor)
                    slot.pointee = part
                })
            }
        }
        return ProcessIndex(parts: parts.map { $0! })
    }

    private init(parts: [Partial]) {
        let total = parts.reduce(0) { $0 + $1.inodes.count }
        head.reserveCapacity(total)
        next.reserveCapacity(total)
        pids.reserveCapacity(total)
        fds.reserveCapacity(total)
        commIndex.reserveCapacity(total)
        for part in parts {
            let commBase = Int32(comms.count)
            comms.append(contentsOf: part.comms)
            processesScanned += part.processesScanned
            inaccessibleProcesses += part.inaccessible
            descriptorsRead += part.descriptorsRead
            for i in part.inodes.indices {
                let entry = Int32(pids.count)
                pids.append(part.pids[i])
                fds.append(part.fds[i])
                commIndex.append(commBase + part.commIndex[i])
                next.append(head.updateValue(entry, forKey: part.inodes[i]) ?? -1)
            }
        }
    }

    /// Who holds socket `inode`, ordered by pid then fd; empty when nobody (or nobody we could see).
    public func owners(of inode: UInt64) -> [SocketOwner] {
        guard var i = head[inode] else { return [] }
        var out: [SocketOwner] = []
        while i >= 0 {
            let e = Int(i)
            out.append(SocketOwner(pid: pids[e], comm: comms[Int(commIndex[e])], fd: fds[e]))
            i = next[e]
        }
        if out.count > 1 { out.sort { ($0.pid, $0.fd) < ($1.pid, $1.fd) } }
        return out
    }

    /// Number of distinct socket inodes held by some process.
    public var socketCount: Int { head.count }
    /// Number of (inode, pid, fd) entries.
    public var entryCount: Int { pids.count }
}

/// Hands out positions in the pid list to scanning threads.
private final class Cursor: @unchecked Sendable {
    private let lock = POSIXMutex()
    private var position = 0
    private let end: Int
    init(_ end: Int) { self.end = end }
    /// The next range of up to `n` positions, nil when done.
    func take(_ n: Int) -> Range<Int>? {
        lock.lock()
        defer { lock.unlock() }
        guard position < end else { return nil }
        let r = position..<min(end, position + n)
        position = r.upperBound
        return r
    }
}

/// One scanning thread's findings.
private struct Partial {
    let wanted: Set<UInt64>?
    var inodes: [UInt64] = []
    var pids: [Int32] = []
    var fds: [Int32] = []
    var commIndex: [Int32] = []
    var comms: [String] = []
    var processesScanned = 0
    var inaccessible = 0
    var descriptorsRead = 0

    init(wanted: Set<UInt64>?) { self.wanted = wanted }

    mutating func scan(procFD: Int32, pids list: ArraySlice<Int32>, next cursor: Cursor?) {
        let scanner = DirectoryScanner()
        // "PID/fd" and "PID/comm" paths, built in place; 64 bytes hold any pid.
        let path = UnsafeMutablePointer<CChar>.allocate(capacity: 64)
        let link = UnsafeMutablePointer<UInt8>.allocate(capacity: 64)
        defer { path.deallocate(); link.deallocate() }

        if let cursor {
            while let range = cursor.take(1) {  // one process at a time: a few hold most fds
                for i in range { scanProcess(list[list.startIndex + i], procFD, scanner, path, link) }
            }
        } else {
            for pid in list { scanProcess(pid, procFD, scanner, path, link) }
        }
    }

    private mutating func scanProcess(
        _ pid: Int32, _ procFD: Int32, _ scanner: borrowing DirectoryScanner,
        _ path: UnsafeMutablePointer<CChar>, _ link: UnsafeMutablePointer<UInt8>
    ) {
        let pidLen = writeDecimal(Int64(pid), to: path)
        appendASCII("/fd", to: path, at: pidLen)
        let dirFD = openat(procFD, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD < 0 {
            if errno == EACCES || errno == EPERM { inaccessible += 1 }
            return
        }
        defer { close(dirFD) }
        processesScanned += 1
        var comm: Int32 = -1
        var reads = 0
        let wanted = self.wanted
        scanner.forEach(inDirectory: dirFD) { name, len in
            reads += 1
            let n = readlinkat(dirFD, name, link, 64)
            // "socket:[" + at least one digit + "]"
            guard n >= 10, link[0] == 0x73, link[1] == 0x6F, link[2] == 0x63, link[3] == 0x6B,
                  link[4] == 0x65, link[5] == 0x74, link[6] == 0x3A, link[7] == 0x5B,
                  link[n - 1] == 0x5D else { return }
            var inode: UInt64 = 0
            for k in 8..<(n - 1) {
                let c = link[k] &- 0x30
                guard c <= 9 else { return }
                inode = inode &* 10 &+ UInt64(c)
            }
            if let wanted, !wanted.contains(inode) { return }
            guard let fd = parseDecimal(name, len) else { return }
            if comm < 0 {
                comm = Int32(comms.count)
                comms.append(readComm(procFD, path, pidLen))
            }
            inodes.append(inode)
            pids.append(pid)
            fds.append(Int32(truncatingIfNeeded: fd))
            commIndex.append(comm)
        }
        descriptorsRead += reads
    }

    /// /proc/PID/comm without its newline; "" when the process is gone.
    private func readComm(_ procFD: Int32, _ path: UnsafeMutablePointer<CChar>, _ pidLen: Int) -> String {
        appendASCII("/comm", to: path, at: pidLen)
        let fd = openat(procFD, path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var buf = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        return withUnsafeMutableBytes(of: &buf) { raw in
            let n = read(fd, raw.baseAddress, raw.count)
            guard n > 0 else { return "" }
            var len = n
            if raw[len - 1] == 0x0A { len -= 1 }
            return String(decoding: UnsafeRawBufferPointer(rebasing: raw[0..<len]), as: UTF8.self)
        }
    }
}

/// Writes `value` in decimal at `p`; returns the number of bytes written (no terminator).
@inline(__always)
private func writeDecimal(_ value: Int64, to p: UnsafeMutablePointer<CChar>) -> Int {
    var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
    return withUnsafeMutableBytes(of: &digits) { tmp in
        var v = value
        var n = 0
        repeat {
            tmp[n] = UInt8(v % 10) + 0x30
            v /= 10
            n += 1
        } while v > 0
        for i in 0..<n { p[i] = CChar(bitPattern: tmp[n - 1 - i]) }
        return n
    }
}

/// Copies `suffix` and a NUL to `p + at`.
@inline(__always)
private func appendASCII(_ suffix: StaticString, to p: UnsafeMutablePointer<CChar>, at: Int) {
    let s = suffix.utf8Start
    for i in 0..<suffix.utf8CodeUnitCount { p[at + i] = CChar(bitPattern: s[i]) }
    p[at + suffix.utf8CodeUnitCount] = 0
}

/// A `ProcessIndex` being built on a thread of its own (`ProcessIndex.start`), so the /proc scan
/// can overlap with other work, e.g. opening the first namespace's dump; `wait()` joins it.
public final class PendingProcessIndex: @unchecked Sendable {
    private let lock = POSIXMutex()
    private let done = POSIXCondition()
    private var thread: POSIXThread?
    private var result: Result<ProcessIndex, Error>?

    fileprivate init(wanted: Set<UInt64>?, threads: Int, procRoot: String) throws {
        lock.lock()
        defer { lock.unlock() }
        thread = try POSIXThread.start(name: "sockctl-procidx") { [self] in
            let built = Result { try ProcessIndex.build(wanted: wanted, threads: threads, procRoot: procRoot) }
            lock.lock()
            result = built
            done.broadcast()
            lock.unlock()
        }
    }

    /// Waits for the scan to end and returns the index (or its error). Safe to call more than once
    /// and from several threads; the scanning thread is joined once.
    public func wait() throws -> ProcessIndex {
        lock.lock()
        while result == nil { done.wait(lock) }
        let joining = thread
        thread = nil
        let built = result!
        lock.unlock()
        joining?.join()
        return try built.get()
    }
}

extension ProcessIndex {
    /// Starts `build` on a dedicated thread and returns at once.
    public static func start(wanted: Set<UInt64>? = nil, threads: Int = defaultThreads, procRoot: String = "/proc") throws -> PendingProcessIndex {
        try PendingProcessIndex(wanted: wanted, threads: threads, procRoot: procRoot)
    }
}
