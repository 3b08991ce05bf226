import CSockDestroy
import Glibc
import Logging

/// Destroys sockets from inside the kernel: the `iter/tcp` and `iter/udp` programs of
/// Sources/BPF/bpf/sock_destroy.bpf.c, loaded once through libbpf.so.1 (dlopen), run once per
/// destroy() and protocol.
///
/// Network namespace: a BPF socket iterator walks the namespace of the thread that calls
/// bpf_iter_create, i.e. the thread calling destroy() (the kernel takes `current`'s net at
/// iterator creation; where the object was loaded or the link attached does not matter; BPFTests
/// `iteratorFollowsCallingThreadNetns` shows it). So: load one destroyer per process, and call
/// destroy() on a dedicated thread that has already done setns(CLONE_NEWNET) into the target
/// namespace. Never call it on a Swift-concurrency thread that you moved with setns.
///
/// destroy() calls are serialized (the filter lives in maps shared by all calls), so concurrent
/// callers in different namespaces take turns; each call is one pass over the namespace.
/// Needs CAP_BPF + CAP_PERFMON + CAP_NET_ADMIN (root) and Linux 6.5+ with BTF.
public final class BPFSocketDestroyer: @unchecked Sendable {
    /// Whether this machine can run the BPF backend, without loading anything: libbpf.so.1 1.x
    /// present and the kernel's BTF declares bpf_sock_destroy. Loading can still fail (no
    /// privileges, verifier); init() reports that.
    public static func isSupported() -> Result<Void, BPFError> {
        Result { () throws(BPFError) in
            _ = try LibBPF.shared.get()
            try KernelBTF.checkSockDestroy()
        }
    }

    public let lib: LibBPF
    private let object: OpaquePointer
    private var links: [BPFDestroySpec.TransportProtocol: OpaquePointer] = [:]
    private let configFD: Int32, clausesFD: Int32, cookiesFD: Int32, statsFD: Int32
    private var generation: UInt32 = 0
    private var mutex = pthread_mutex_t()
    private let logger: Logger

    /// Loads and verifies the programs and attaches them as iterators (namespace-independent).
    /// Throws a BPFError whose `isUnsupported` is true when the machine cannot do it.
    public init(library: LibBPF? = nil, logger: Logger = Logger(label: "sockctl.bpf")) throws(BPFError) {
        let lib: LibBPF
        if let library { lib = library } else { lib = try LibBPF.shared.get() }
        self.lib = lib
        self.logger = logger
        try KernelBTF.checkSockDestroy()
        let image = SockDestroyObject.bytes
        _ = LibBPFLog.drainWarnings()
        let name = strdup("sockctl_sock_destroy")
        defer { free(name) }
        // struct bpf_object_open_opts { size_t sz; const char *object_name; ... }: only the name.
        var opts: (Int, UnsafeMutablePointer<CChar>?) = (MemoryLayout<Int>.size * 2, name)
        let opened = image.withUnsafeBytes { buf in
            withUnsafePointer(to: &opts) { lib.objectOpenMem(buf.baseAddress, buf.count, UnsafeRawPointer($0)) }
        }
        guard let obj = opened else {
            throw .kernel(operation: "bpf_object__open_mem", errno: errno, detail: LibBPFLog.drainWarnings().joined(separator: "\n"))
        }
        let rc = lib.objectLoad(obj)
        if rc != 0 {
            let log = LibBPFLog.drainWarnings()
            lib.objectClose(obj)
            if log.contains(where: { $0.contains("bpf_sock_destroy") }) {
                throw .kernelLacksSockDestroy(detail: log.suffix(3).joined(separator: "; "))
            }
            throw .kernel(operation: "bpf_object__load", errno: -rc, detail: log.suffix(15).joined(separator: "\n"))
        }
        object = obj
        func mapFD(_ n: String) throws(BPFError) -> Int32 {
            guard let m = lib.findMapByName(obj, n) else {
                throw .kernel(operation: "bpf_object__find_map_by_name(\(n))", errno: ENOENT, detail: "")
            }
            return lib.mapFD(m)
        }
        var fds: [Int32] = []
        do throws(BPFError) {
            fds = [try mapFD("config"), try mapFD("clauses"), try mapFD("cookies"), try mapFD("stats")]
            for (proto, prog) in [(BPFDestroySpec.TransportProtocol.tcp, "sockctl_destroy_tcp"), (.udp, "sockctl_destroy_udp")] {
                guard let p = lib.findProgramByName(obj, prog) else {
                    throw .kernel(operation: "bpf_object__find_program_by_name(\(prog))", errno: ENOENT, detail: "")
                }
                guard let link = lib.attachIter(p, nil) else {
                    throw .kernel(operation: "bpf_program__attach_iter(\(prog))", errno: errno,
                                          detail: LibBPFLog.drainWarnings().joined(separator: "\n"))
                }
                links[proto] = link
            }
        } catch {
            for l in links.values { _ = lib.linkDestroy(l) }
            lib.objectClose(obj)
            throw error
        }
        (configFD, clausesFD, cookiesFD, statsFD) = (fds[0], fds[1], fds[2], fds[3])
        logger.debug("loaded sock_destroy BPF object with libbpf \(lib.version)")
    }

    deinit {
        for l in links.values { _ = lib.linkDestroy(l) }
        lib.objectClose(object)
    }

    /// Runs the iterators once in the calling thread's network namespace and returns what they
    /// matched. Throws BPFError for bad specs and failed bpf(2) calls; per-socket failures are
    /// records with `.failed(errno:)`, not thrown.
    public func destroy(_ spec: BPFDestroySpec) throws(BPFError) -> BPFDestroyResult {
        var records: [BPFDestroyRecord] = []
        var result = try destroy(spec) { records.append(contentsOf: $0) }
        result.records = records
        return result
    }

    /// Like destroy(_:), but hands the records to `onRecords` as the iterator produces them (one
    /// call per read(), in the calling thread, while the pass goes on) instead of collecting them;
    /// the result's `records` is empty. Lets a caller print or forward while the kernel works.
    public func destroy(_ spec: BPFDestroySpec, onRecords: ([BPFDestroyRecord]) -> Void) throws(BPFError) -> BPFDestroyResult {
        try spec.validate()
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }

        generation &+= 1
        if generation == 0 { generation = 1 }
        var cfg = sockctl_config()
        cfg.nclauses = UInt32(spec.clauses.count)
        cfg.cookie_gen = generation
        if let s = spec.shard { cfg.shard = UInt32(s.count) << 16 | UInt32(s.index) }
        if spec.dryRun { cfg.mode |= SOCKCTL_MODE_DRY_RUN }
        if spec.everything { cfg.mode |= SOCKCTL_MODE_ALL }
        if spec.cookies != nil { cfg.mode |= SOCKCTL_MODE_COOKIES }
        if !spec.collectRecords { cfg.mode |= SOCKCTL_MODE_NO_RECORDS }

        for (i, c) in spec.clauses.enumerated() {
            var key = UInt32(i)
            var value = BPFDestroySpec.encode(c)
            try check(lib.mapUpdateElem(clausesFD, &key, &value, 0), "bpf_map_update_elem(clauses)")
        }
        let cookieList = spec.cookies.map { Array($0) } ?? []
        if !cookieList.isEmpty { try loadCookies(cookieList) }
        defer { if !cookieList.isEmpty { clearCookies(cookieList) } }
        var zero: UInt32 = 0
        try check(lib.mapUpdateElem(configFD, &zero, &cfg, 0), "bpf_map_update_elem(config)")

        var result = BPFDestroyResult(records: [], counts: BPFDestroyCounts())
        for proto in [BPFDestroySpec.TransportProtocol.tcp, .udp] where spec.protocols.contains(proto) {
            var stats = sockctl_stats()
            try check(lib.mapUpdateElem(statsFD, &zero, &stats, 0), "bpf_map_update_elem(stats)")
            try runIterator(links[proto]!, sink: onRecords)
            try check(lib.mapLookupElem(statsFD, &zero, &stats), "bpf_map_lookup_elem(stats)")
            result.counts.visited += stats.visited
            result.counts.matched += stats.matched
            result.counts.destroyed += stats.destroyed
            result.counts.failed += stats.failed
            result.counts.notDestroyable += stats.not_destroyable
            result.counts.needsNetlink += stats.needs_netlink
        }
        return result
    }

    /// bpf_iter_create on the link (binds the calling thread's netns), then read() records until EOF.
    /// bpf_iter_create on the link, then read() until EOF, handing each read's records to `sink`
    /// while the kernel pass goes on.
    private func runIterator(_ link: OpaquePointer, sink: ([BPFDestroyRecord]) -> Void) throws(BPFError) {
        let fd = lib.iterCreate(lib.linkFD(link))
        guard fd >= 0 else {
            throw .kernel(operation: "bpf_iter_create", errno: -fd > 0 ? -fd : errno, detail: "")
        }
        defer { close(fd) }
        let recordSize = MemoryLayout<sockctl_record>.size
        let bufferSize = 64 * 1024
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 8)
        defer { buffer.deallocate() }
        var pending = 0  // bytes of a partial record carried over (read() splits only at record ends, but be safe)
        while true {
            let n = read(fd, buffer + pending, bufferSize - pending)
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw .kernel(operation: "read(bpf iterator)", errno: errno, detail: "")
            }
            if n == 0 { break }
            let total = pending + n
            var off = 0
            var chunk: [BPFDestroyRecord] = []
            chunk.reserveCapacity(total / recordSize)
            while off + recordSize <= total {
                chunk.append(BPFDestroyRecord(buffer.loadUnaligned(fromByteOffset: off, as: sockctl_record.self)))
                off += recordSize
            }
            if !chunk.isEmpty { sink(chunk) }
            pending = total - off
            if pending > 0 { (buffer).copyMemory(from: buffer + off, byteCount: pending) }
        }
    }

    private func loadCookies(_ list: [UInt64]) throws(BPFError) {
        var keys = list
        var values = [UInt32](repeating: generation, count: list.count)
        var count = UInt32(list.count)
        let rc = lib.mapUpdateBatch(cookiesFD, &keys, &values, &count, nil)
        if rc == 0 { return }
        logger.debug("bpf_map_update_batch(cookies) failed (\(rc)); updating one by one")
        for var k in list {
            var g = generation
            try check(lib.mapUpdateElem(cookiesFD, &k, &g, 0), "bpf_map_update_elem(cookies)")
        }
    }

    /// Best effort: stale entries cannot match (their generation is old), this only frees memory.
    private func clearCookies(_ list: [UInt64]) {
        var keys = list
        var count = UInt32(list.count)
        if lib.mapDeleteBatch(cookiesFD, &keys, &count, nil) != 0 {
            logger.debug("bpf_map_delete_batch(cookies) failed after \(count) entries")
        }
    }

    private func check(_ rc: Int32, _ op: String) throws(BPFError) {
        if rc != 0 { throw .kernel(operation: op, errno: rc < 0 ? -rc : errno, detail: "") }
    }
}

extension SockDestroyObject {
    /// The embedded object decoded from base64 (RFC 4648, newlines ignored).
    static var bytes: [UInt8] {
        var table = [UInt8](repeating: 0xff, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(c)] = UInt8(i)
        }
        var out: [UInt8] = []
        out.reserveCapacity(base64.utf8.count * 3 / 4)
        var acc: UInt32 = 0, bits = 0
        for c in base64.utf8 {
            let v = table[Int(c)]
            if v == 0xff { continue }  // newline, padding
            acc = acc << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        return out
    }
}
