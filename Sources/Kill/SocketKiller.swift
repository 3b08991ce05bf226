/// # Kill: destroy sockets on purpose, from Swift
///
/// select → destroy by cookie → per-socket outcome. A connection manager, CNI agent or daemon
/// calls this directly; `sockctl kill` is a thin layer over it.
///
/// ```swift
/// let killer = SocketKiller()
/// // By filter (ss syntax), in two namespaces, refusing if more than 100 match:
/// var req = try KillRequest(filter: "dst 10.244.1.7 and dport = :8080", protocols: [.tcp])
/// req.namespaces = .list([podNetns])        // or .current, .all
/// req.max = 100
/// let report = try killer.kill(req)          // blocking; `try await killer.kill(req)` from async code
/// for r in report.results { print(r.netns ?? "-", r.socket.cookie, r.outcome.name) }
/// // By cookies (cookies are unique on the host; `namespaces` says where to look):
/// let again = try killer.kill(KillRequest(cookies: [cookie1, cookie2], namespaces: .list([podNetns])))
/// // Streaming (one callback per socket, on the calling thread, namespace by namespace):
/// let summary = try killer.kill(req) { result in print(result.outcome) }
/// ```
///
/// - Request: `KillRequest` — a `SocketFilter` (or its text), optional cookie set (ANDed with the
///   filter), protocols (`.tcp`, `.udp`, `.raw`), families (AF_INET/AF_INET6), a state mask
///   (default: every state but TIME-WAIT, unless the filter names states), namespaces
///   (`.current`, `.list([NetworkNamespace])`, `.all`), `all` (allow an empty filter), `dryRun`,
///   `max`, `backend`.
/// - Result: `KillReport` = `results: [KillResult]` (socket, interface name, netns label,
///   `KillOutcome`: destroyed / alreadyGone / notDestroyable / wouldDestroy / failed(errno, message))
///   and `summary: KillSummary` (per-namespace counts, namespaces that could not be worked on, the
///   backend that ran and why).
/// - Errors: `KillError` — `.permission` ("needs CAP_NET_ADMIN in the socket's network namespace"),
///   `.unsupported` ("kernel built without CONFIG_INET_DIAG_DESTROY"), `.tooManyMatches`,
///   `.emptyFilter`, `.nothingDestroyable`; filter and namespace errors are passed through
///   (`FilterSyntaxError`, `FilterCompileError`, `NamespaceError`).
///
/// Safety: every destroy carries the socket cookie, so a socket whose 4-tuple was reused since the
/// dump is never hit (the kernel answers ENOENT: `alreadyGone`). Before destroying anything in a
/// namespace, destroy support and permission are probed by destroying a socket of our own there
/// (once per owning user namespace; once in all for a caller with CAP_NET_ADMIN in the initial
/// user namespace), so an unsupported kernel or a missing capability fails loudly with nothing
/// touched. A dry run touches nothing (no probe either). With `max`, everything is selected first
/// and nothing is destroyed when more match.
///
/// Threads: `SocketKiller` is `Sendable` and may be called concurrently from any thread or task.
/// Work in other namespaces runs on dedicated threads that enter the namespace (never on Swift
/// concurrency threads); the async form suspends the task while a thread of its own does the work.
import Namespaces
import Netlink
import SockDiag
import SocketFilter
#if canImport(Glibc)
import Glibc
#endif

/// Which network namespaces a kill looks in.
public enum KillNamespaces: Sendable {
    /// The calling thread's own namespace (no thread switch).
    case current
    /// These namespaces (e.g. resolved with `NamespaceResolver`).
    case list([NetworkNamespace])
    /// Every network namespace on the host (`NetworkNamespace.discoverAll()`).
    case all
}

/// Which kernel interface destroys the sockets.
public enum KillBackend: String, Sendable, CaseIterable {
    /// BPF when the kernel and libbpf support it, the filter translates to BPF clauses, there is
    /// one target namespace (the iterator walks the host-wide table once per namespace), and the
    /// BPF programs are already loaded in this process (`SocketKiller.preloadBPF()`; loading
    /// them for one kill costs more than netlink saves); netlink otherwise.
    case auto
    /// `SOCK_DESTROY` over `NETLINK_SOCK_DIAG`, by cookie, batched.
    case netlink
    /// `iter/tcp` + `iter/udp` calling `bpf_sock_destroy` with the filter evaluated in the kernel
    /// (request sockets and raw sockets still go through netlink, by cookie).
    case bpf
}

/// What to kill.
public struct KillRequest: Sendable {
    /// ss-syntax filter; an empty filter needs `all` (or `cookies`).
    public var filter: SocketFilter
    /// When set, only sockets with one of these cookies (and matching `filter`) are destroyed.
    public var cookies: Set<UInt64>?
    /// `.tcp`, `.udp`, `.raw` (unix sockets cannot be destroyed).
    public var protocols: [SocketKind]
    /// `AF_INET`, `AF_INET6`. An IPv4 address filter also matches IPv4-mapped IPv6 sockets.
    public var families: [UInt8]
    /// Kernel state mask used when the filter names no state; nil = every state SOCK_DESTROY can
    /// reach (TCP: all but TIME-WAIT, CLOSE, BOUND-INACTIVE; UDP and RAW: all but TIME-WAIT).
    public var states: UInt32?
    public var namespaces: KillNamespaces
    /// Allow an empty filter (destroy every selected socket).
    public var all: Bool
    /// Select and report `wouldDestroy`; destroy nothing.
    public var dryRun: Bool
    /// Refuse (`KillError.tooManyMatches`), destroying nothing, when more sockets match.
    public var max: Int?
    /// Default `.auto`.
    public var backend: KillBackend = .auto

    public init(filter: SocketFilter, protocols: [SocketKind] = [.tcp, .udp, .raw],
                families: [UInt8] = [UInt8(AF_INET), UInt8(AF_INET6)], states: UInt32? = nil,
                namespaces: KillNamespaces = .current, all: Bool = false, dryRun: Bool = false, max: Int? = nil) {
        self.filter = filter
        self.protocols = protocols
        self.families = families
        self.states = states
        self.namespaces = namespaces
        self.all = all
        self.dryRun = dryRun
        self.max = max
    }

    /// Parses `filter` (ss syntax); throws `FilterSyntaxError`.
    public init(filter: String, protocols: [SocketKind] = [.tcp, .udp, .raw],
                families: [UInt8] = [UInt8(AF_INET), UInt8(AF_INET6)], states: UInt32? = nil,
                namespaces: KillNamespaces = .current, all: Bool = false, dryRun: Bool = false, max: Int? = nil) throws {
        self.init(filter: try SocketFilter.parse(filter), protocols: protocols, families: families, states: states,
                  namespaces: namespaces, all: all, dryRun: dryRun, max: max)
    }

    /// Exactly these sockets (by cookie), looked for in `namespaces`, in any state.
    public init(cookies: Set<UInt64>, namespaces: KillNamespaces = .current, dryRun: Bool = false) {
        self.init(filter: SocketFilter(expression: nil, stateMask: nil), protocols: [.tcp, .udp, .raw], states: SocketState.allMask,
                  namespaces: namespaces, dryRun: dryRun)
        self.cookies = cookies
    }
}

/// What happened to one socket.
public enum KillOutcome: Equatable, Sendable {
    case destroyed
    /// Gone before the destroy reached it (ENOENT for its cookie); nothing else was touched.
    case alreadyGone
    /// TIME-WAIT: the kernel cannot destroy it. Reported, not an error.
    case notDestroyable
    /// Dry run: would have been destroyed.
    case wouldDestroy
    case failed(errno: Int32, message: String)

    /// `destroyed`, `already-gone`, `not-destroyable`, `would-destroy`, `failed` (JSON `outcome`).
    public var name: String {
        switch self {
        case .destroyed: return "destroyed"
        case .alreadyGone: return "already-gone"
        case .notDestroyable: return "not-destroyable"
        case .wouldDestroy: return "would-destroy"
        case .failed: return "failed"
        }
    }

    init(_ o: DestroyOutcome) {
        switch o {
        case .destroyed: self = .destroyed
        case .alreadyGone: self = .alreadyGone
        case .notDestroyable: self = .notDestroyable
        case .wouldDestroy: self = .wouldDestroy
        case .failed(let e): self = .failed(errno: e, message: String(cString: strerror(e)))
        }
    }
}

/// One selected socket and what happened to it.
public struct KillResult: Sendable {
    public var socket: Socket
    /// Name of the bound interface in the socket's namespace (nil when unbound).
    public var interface: String?
    /// Label of the socket's network namespace (nil for `.current`). The socket's own `netns`:
    /// one copy of the label per result, not two.
    public var netns: String? {
        get { socket.netns }
        set { socket.netns = newValue }
    }
    public var outcome: KillOutcome

    public init(socket: Socket, interface: String?, netns: String?, outcome: KillOutcome) {
        self.socket = socket
        self.interface = interface
        self.outcome = outcome
        if socket.netns != netns { self.socket.netns = netns }
    }
}

/// Counts for one namespace.
public struct NamespaceKillSummary: Sendable {
    /// nil for `.current`.
    public var netns: String?
    public var destroyed = 0
    public var alreadyGone = 0
    public var notDestroyable = 0
    public var wouldDestroy = 0
    public var failed = 0
    /// Set when the namespace could not be worked on (e.g. it vanished); nothing was done there.
    public var error: String?
    public var matched: Int { destroyed + alreadyGone + notDestroyable + wouldDestroy + failed }

    mutating func count(_ o: KillOutcome) {
        switch o {
        case .destroyed: destroyed += 1
        case .alreadyGone: alreadyGone += 1
        case .notDestroyable: notDestroyable += 1
        case .wouldDestroy: wouldDestroy += 1
        case .failed: failed += 1
        }
    }
}

/// Per-namespace counts, in the order the namespaces were worked on.
public struct KillSummary: Sendable {
    public var namespaces: [NamespaceKillSummary] = []
    /// Which backend ran, and why (for `-v`).
    public var backend: String = "netlink"
    public var backendReason: String = ""
    /// How destroy support and permission were checked before anything was destroyed (for `-v`).
    public var probe: String = ""
    public var matched: Int { namespaces.reduce(0) { $0 + $1.matched } }
    public var destroyed: Int { namespaces.reduce(0) { $0 + $1.destroyed } }
    public var failed: Int { namespaces.reduce(0) { $0 + $1.failed } }
    /// Namespaces that could not be worked on.
    public var namespaceErrors: Int { namespaces.filter { $0.error != nil }.count }
}

public struct KillReport: Sendable {
    public var results: [KillResult]
    public var summary: KillSummary
}

/// Why a kill did nothing. `description` is the message for the user; `exitStatus` the CLI's.
public enum KillError: Error, CustomStringConvertible, Equatable, Sendable {
    /// EPERM/EACCES on SOCK_DESTROY: no CAP_NET_ADMIN over the namespace.
    case permission(netns: String?, detail: String)
    /// EOPNOTSUPP on SOCK_DESTROY: the kernel cannot destroy sockets.
    case unsupported(netns: String?, detail: String)
    /// More sockets matched than `max`; nothing was destroyed.
    case tooManyMatches(count: Int, max: Int)
    /// Empty filter without `all` or `cookies`.
    case emptyFilter
    /// Only unix sockets were asked for; SOCK_DESTROY is inet only.
    case nothingDestroyable
    /// The up-front destroy of our own probe socket gave an unexpected answer.
    case probeFailed(netns: String?, detail: String)
    /// `backend: .bpf` was asked for and this machine cannot run it (libbpf, kernel, privileges).
    case bpfUnavailable(String)
    /// `backend: .bpf` was asked for and the filter has no BPF clause form.
    case notTranslatable(String)

    public var description: String {
        func at(_ ns: String?) -> String { ns.map { " (netns \($0))" } ?? "" }
        switch self {
        case .permission(let ns, let d):
            return "SOCK_DESTROY\(at(ns)): \(d): needs CAP_NET_ADMIN in the socket's network namespace"
        case .unsupported(let ns, let d):
            return "SOCK_DESTROY\(at(ns)): \(d): kernel built without CONFIG_INET_DIAG_DESTROY"
        case .tooManyMatches(let n, let m):
            return "\(n) sockets match, more than --max \(m): nothing destroyed"
        case .emptyFilter:
            return "refusing to kill with an empty filter: give a FILTER, or --all to destroy every selected socket"
        case .nothingDestroyable:
            return "unix sockets cannot be destroyed by the kernel (SOCK_DESTROY is inet only)"
        case .probeFailed(let ns, let d):
            return "destroy probe\(at(ns)): \(d)"
        case .bpfUnavailable(let d):
            return "--backend bpf: \(d)"
        case .notTranslatable(let d):
            return "--backend bpf: the filter does not translate to BPF clauses: \(d) (use --backend netlink or auto)"
        }
    }

    /// DESIGN.md exit statuses: 2 usage/refusal, 3 permission or kernel support missing.
    public var exitStatus: Int32 {
        switch self {
        case .permission, .unsupported: return 3
        case .tooManyMatches, .emptyFilter, .nothingDestroyable, .notTranslatable: return 2
        case .bpfUnavailable: return 3
        case .probeFailed: return 4
        }
    }
}

/// Destroys the sockets a `KillRequest` selects. See the top of this file.
public final class SocketKiller: Sendable {
    /// How many namespaces are worked on at once.
    public let parallelism: Int
    /// Destroy requests per `sendmsg`.
    public let batchSize: Int

    public init(parallelism: Int = NamespaceRunner.defaultParallelism, batchSize: Int = 128) {
        self.parallelism = max(1, parallelism)
        self.batchSize = max(1, batchSize)
    }

    /// Kills and collects every result.
    public func kill(_ request: KillRequest) throws -> KillReport {
        var results: [KillResult] = []
        let summary = try kill(request) { results.append($0) }
        return KillReport(results: results, summary: summary)
    }

    /// Async form: runs on a thread of its own; the task is suspended, not blocking a pool thread.
    public func kill(_ request: KillRequest) async throws -> KillReport {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<KillReport, Error>) in
            do {
                try POSIXThread.start(name: "sockctl-kill") { c.resume(with: Result { try self.kill(request) }) }.detach()
            } catch {
                c.resume(throwing: error)
            }
        }
    }

    /// Streaming form: `onResult` is called on the calling thread for each socket, namespace by
    /// namespace, while later namespaces are still being worked on. Returns the summary.
    public func kill(_ request: KillRequest, onResult: (KillResult) throws -> Void) throws -> KillSummary {
        let kinds = request.protocols.filter { !$0.isUnix }
        if kinds.isEmpty { throw KillError.nothingDestroyable }
        if request.filter.isEmpty && request.cookies == nil && !request.all { throw KillError.emptyFilter }
        let spaces: [NetworkNamespace]?
        switch request.namespaces {
        case .current: spaces = nil
        case .list(let l): spaces = l
        case .all: spaces = try NetworkNamespace.discoverAll()
        }
        let plan = NetlinkPlan(request: request, kinds: kinds, batchSize: batchSize,
                               lookup: request.filter.needsProcesses ? try ProcessLookup() : nil)
        var summary = KillSummary()
        var engine = Engine(netlink: plan)
        summary.backend = "netlink"
        summary.backendReason = "SOCK_DESTROY by cookie, \(batchSize) per sendmsg"
        if request.backend != .netlink {
            switch Self.bpfEngine(request, kinds: kinds, netlink: plan, spaces: spaces, parallelism: parallelism) {
            case .success(let e):
                engine = e
                summary.backend = "bpf"
                summary.backendReason = "filter translated to \(e.clauseCount) BPF clause(s); bpf_sock_destroy from iter/tcp and iter/udp"
            case .failure(let why):
                if request.backend == .bpf { throw why }
                summary.backendReason = "BPF not used: " + (why.bpfReason ?? "\(why)") + "; " + summary.backendReason
            }
        }

        guard let spaces else {
            if !request.dryRun { try engine.probe(nil) }
            summary.probe = request.dryRun ? "none (dry run)" : engine.probedWhenChosen ?? "one socket of our own destroyed in this namespace"
            var ns = NamespaceKillSummary(netns: nil)
            if let max = request.max {
                let found = try engine.select(nil)
                if found.count > max { throw KillError.tooManyMatches(count: found.count, max: max) }
                try engine.destroy(found, nil) { r in ns.count(r.outcome); try onResult(r) }
            } else {
                try engine.run(nil) { r in ns.count(r.outcome); try onResult(r) }
            }
            summary.namespaces = [ns]
            return summary
        }

        // Probe before touching any namespace: a missing capability or kernel feature fails the
        // whole kill with nothing destroyed. Namespaces that vanished are reported and skipped.
        var usable: [NetworkNamespace] = []
        var skipped: [NetworkNamespace: String] = [:]
        if request.dryRun {
            usable = spaces
            summary.probe = "none (dry run)"
        } else if let note = engine.probedWhenChosen {
            usable = spaces
            summary.probe = note
        } else if NetworkNamespace.callerHasNetAdminEverywhere() {
            // Root in the initial user namespace: the permission holds in every namespace, and
            // destroy support is the kernel's, so one probe in our own namespace answers for all
            // (no owner lookups, no thread entering a namespace). A namespace that vanished is
            // reported when its turn comes, as one that vanishes during the kill is.
            try engine.probe(nil)
            usable = spaces
            summary.probe = "one socket of our own destroyed in sockctl's namespace, for all: CAP_NET_ADMIN in the initial user namespace holds in every namespace"
        } else {
            usable = try Self.probeByOwner(spaces, skipped: &skipped, parallelism: parallelism, probe: engine.probe)
            summary.probe = "one socket of our own destroyed per owning user namespace"
        }
        var preselected: [NetworkNamespace: [(Socket, String?)]]?
        if let max = request.max {
            let select = engine.select
            let found = NamespaceRunner.map(usable, parallelism: parallelism) { ns in try select(ns.label) }
            var map: [NetworkNamespace: [(Socket, String?)]] = [:]
            var total = 0
            for (ns, f) in zip(usable, found) {
                switch f {
                case .success(let s): map[ns] = s; total += s.count
                case .failure(let e as NamespaceError) where spaces.count > 1: skipped[ns] = "\(e)"
                case .failure(let e): throw e
                }
            }
            if total > max { throw KillError.tooManyMatches(count: total, max: max) }
            preselected = map
        }
        var byNamespace: [NetworkNamespace: NamespaceKillSummary] = [:]
        for ns in spaces { byNamespace[ns] = NamespaceKillSummary(netns: ns.label, error: skipped[ns]) }
        let work = usable.filter { skipped[$0] == nil }
        let chosen = preselected
        let e = engine
        // The namespace being consumed is counted here and stored when it ends: no dictionary
        // lookup per socket.
        var current = NamespaceKillSummary(netns: nil)
        var currentNS: NetworkNamespace?
        try NamespaceRunner.stream(work, parallelism: parallelism, bufferLimit: 8, produce: {
            (ns: NetworkNamespace, push: ([KillResult]) throws -> Void) in
            var batch: [KillResult] = []
            batch.reserveCapacity(256)
            let sink: (KillResult) throws -> Void = { r in
                batch.append(r)
                if batch.count == 256 { try push(batch); batch.removeAll(keepingCapacity: true) }
            }
            if let chosen { try e.destroy(chosen[ns] ?? [], ns.label, sink) }
            else { try e.run(ns.label, sink) }
            if !batch.isEmpty { try push(batch) }
        }, consume: { ns, event in
            if currentNS != ns { current = byNamespace[ns]!; currentNS = ns }
            switch event {
            case .item(let batch):
                for r in batch { current.count(r.outcome); try onResult(r) }
            case .finished:
                byNamespace[ns] = current
            case .failed(let e as NamespaceError) where spaces.count > 1:
                current.error = "\(e)"
                byNamespace[ns] = current
            case .failed(let e): throw e
            }
        })
        summary.namespaces = spaces.map { byNamespace[$0]! }
        return summary
    }

    /// Probes `spaces` and returns those that can be worked on, in order; vanished ones go to
    /// `skipped` (with one namespace, its error is thrown). SOCK_DESTROY checks CAP_NET_ADMIN against
    /// the user namespace that owns the socket's network namespace, and destroy support is a
    /// property of the kernel, so one probe answers for every namespace with the same owner: on a
    /// host where all belong to the initial user namespace, one probe instead of one per namespace.
    /// A namespace whose owner cannot be told is probed itself; when the namespace probed for a
    /// group vanished, the rest of the group is probed again.
    static func probeByOwner(_ spaces: [NetworkNamespace], skipped: inout [NetworkNamespace: String], parallelism: Int,
                             probe: @escaping (String?) throws -> Void) throws -> [NetworkNamespace] {
        // One namespace: nothing to group, no owner lookups.
        let owners = spaces.map { spaces.count > 1 ? $0.ownerUserNamespace() : nil }
        var pending = Array(spaces.indices)
        var ok = Set<Int>()
        while !pending.isEmpty {
            // One representative per owner (the first pending one); unknown owners each their own.
            var picked: [Int] = []
            var seen = Set<NamespaceIdentity>()
            for i in pending {
                if let o = owners[i] { if seen.insert(o).inserted { picked.append(i) } } else { picked.append(i) }
            }
            let results = NamespaceRunner.map(picked.map { spaces[$0] }, parallelism: parallelism) { ns in try probe(ns.label) }
            var done = Set<Int>()
            for (i, r) in zip(picked, results) {
                switch r {
                case .success:
                    let group = owners[i].map { o in pending.filter { owners[$0] == o } } ?? [i]
                    ok.formUnion(group)
                    done.formUnion(group)
                case .failure(let e as KillError): throw e
                case .failure(let e as NamespaceError) where spaces.count > 1:
                    skipped[spaces[i]] = "\(e)"
                    done.insert(i)
                case .failure(let e): throw e
                }
            }
            pending.removeAll { done.contains($0) }
        }
        return spaces.indices.filter { ok.contains($0) }.map { spaces[$0] }
    }

    /// Destroys a UDP socket of our own in the calling thread's namespace by cookie with
    /// SOCK_DESTROY, and requires the kernel to have aborted it (ECONNABORTED): destroy works here
    /// and we may use it. Throws `.permission` / `.unsupported` / `.probeFailed`.
    static func probe(label: String?) throws {
        var family = AF_INET
        var fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 {
            family = AF_INET6
            fd = socket(AF_INET6, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        guard fd >= 0 else { throw KillError.probeFailed(netns: label, detail: "socket(SOCK_DGRAM): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var storage = sockaddr_storage()
        var len = socklen_t(family == AF_INET ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size)
        storage.ss_family = sa_family_t(family)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Int32 in
                guard bind(fd, p, len) == 0 else { return -1 }
                return getsockname(fd, p, &len)
            }
        }
        guard rc == 0 else { throw KillError.probeFailed(netns: label, detail: "bind: \(String(cString: strerror(errno)))") }
        let port: UInt16 = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
        var cookie: UInt64 = 0
        var clen = socklen_t(8)
        guard getsockopt(fd, SOL_SOCKET, 57 /* SO_COOKIE */, &cookie, &clen) == 0 else {
            throw KillError.probeFailed(netns: label, detail: "SO_COOKIE: \(String(cString: strerror(errno)))")
        }
        var s = Socket(family: UInt8(family), kind: .udp, state: .close)
        s.source = InetAddress(family == AF_INET ? "0.0.0.0" : "::")
        s.destination = s.source
        s.sourcePort = port
        s.cookie = cookie
        let outcome = try SockDiagClient.destroy([s], on: try SockDiagClient.openSocket(receiveBufferSize: 1 << 16))[0]
        switch outcome {
        case .destroyed:
            var soError: Int32 = 0
            var elen = socklen_t(4)
            _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &elen)
            if soError != ECONNABORTED {
                throw KillError.probeFailed(netns: label, detail: "probe socket's error is \(soError), expected ECONNABORTED")
            }
        case .failed(let e) where e == EPERM || e == EACCES:
            throw KillError.permission(netns: label, detail: String(cString: strerror(e)))
        case .failed(let e) where e == EOPNOTSUPP:
            throw KillError.unsupported(netns: label, detail: String(cString: strerror(e)))
        case .failed(let e):
            throw KillError.probeFailed(netns: label, detail: String(cString: strerror(e)))
        default:
            throw KillError.probeFailed(netns: label, detail: "the kernel did not find our own probe socket (\(outcome.name))")
        }
    }
}

/// The netlink backend's work in one namespace (runs on a thread inside it).
struct NetlinkPlan: @unchecked Sendable {
    let request: KillRequest
    let kinds: [SocketKind]
    let batchSize: Int
    let lookup: ProcessLookup?
    /// The filter compiled once for all namespaces of this kill (when it compiles alike in each).
    let compiler = SelectionCompiler()

    func with(kinds: [SocketKind]) -> NetlinkPlan {
        NetlinkPlan(request: request, kinds: kinds, batchSize: batchSize, lookup: lookup)
    }

    var owners: ((UInt32) throws -> [SocketProcess])? { lookup.map { l in { try l.owners($0) } } }

    /// Default: every state SOCK_DESTROY can reach. For TCP that leaves out TIME-WAIT and the
    /// unhashed CLOSE / BOUND-INACTIVE sockets (the kernel's destroy lookup cannot find them, and
    /// asking for BOUND-INACTIVE makes every dump walk the host-wide bind hash as well).
    func states(_ kind: SocketKind) -> UInt32 {
        if let s = request.states { return s }
        var mask = SocketState.allMask & ~SocketState.timeWait.mask
        if kind == .tcp { mask &= ~(SocketState.close.mask | SocketState.boundInactive.mask) }
        return mask
    }

    var extra: ((Socket) -> Bool)? {
        guard let cookies = request.cookies else { return nil }
        return { cookies.contains($0.cookie) }
    }

    func select(label: String?) throws -> [(Socket, String?)] {
        var found: [(Socket, String?)] = []
        try SocketSelection.collect(kinds: kinds, families: request.families, filter: request.filter, states: states,
                                    extensions: [], label: label, owners: owners, extra: extra, tcpInOneWalk: true,
                                    compiler: compiler) { found.append(($0, $1)) }
        return found
    }

    func destroy(_ found: [(Socket, String?)], label: String?, _ emit: (KillResult) throws -> Void) throws {
        if found.isEmpty { return }
        let outcomes: [DestroyOutcome]
        if request.dryRun {
            outcomes = found.map { $0.0.state == .timeWait ? .notDestroyable : .wouldDestroy }
        } else {
            outcomes = try SockDiagClient.destroy(found.lazy.map { $0.0 }, on: try SockDiagClient.openSocket(), batch: batchSize)
        }
        for ((s, iface), o) in zip(found, outcomes) {
            try emit(KillResult(socket: s, interface: iface, netns: label, outcome: KillOutcome(o)))
        }
    }

    /// Dump and destroy pipelined: each batch of `batchSize` matches is destroyed while the dump is
    /// still being read, not after it ended. This does not make the dump skip sockets: when recvmsg
    /// hands us a chunk, netlink has already produced the next one (netlink_recvmsg runs the dump
    /// again once the receive queue is half empty), so the kernel resumes from a hash bucket past
    /// the sockets we destroy; only a bucket longer than a whole chunk could shift under us. UDP
    /// sockets bound to a port stay hashed when destroyed (nothing shifts). KillPipelineTests
    /// (1,500 TCP clients, 1,500 connected UDP sockets on one port) checks that none is left.
    func selectAndDestroy(label: String?, _ emit: (KillResult) throws -> Void) throws {
        if request.dryRun { return try destroy(try select(label: label), label: label, emit) }
        // The dump's own socket destroys what is left once the dump is read; a second socket is
        // opened only when batches fill up while the dump is still running (most namespaces of an
        // all-namespaces kill hold a few matches or none: no socket, no thread for them).
        let client = try SockDiagClient()
        var midDump: NetlinkSocket?
        var dumping = true
        // A second lane: once there is a whole batch, a helper thread with a netlink socket of its
        // own (opened here, so it talks to this namespace) destroys batches whenever it is idle,
        // while this thread goes on reading the dump or destroys the next batch itself. Most of a
        // destroy's cost is the kernel's abort and RST, which then runs on two cores.
        var lane: DestroyLane?
        var pending: [(Socket, String?)] = []
        pending.reserveCapacity(batchSize)
        func emitAll(_ done: [((Socket, String?), DestroyOutcome)]) throws {
            for ((s, iface), o) in done {
                try emit(KillResult(socket: s, interface: iface, netns: label, outcome: KillOutcome(o)))
            }
        }
        func emitAll(_ sent: [(Socket, String?)], _ outcomes: [DestroyOutcome]) throws {
            for (i, o) in outcomes.enumerated() {
                try emit(KillResult(socket: sent[i].0, interface: sent[i].1, netns: label, outcome: KillOutcome(o)))
            }
        }
        func flush(last: Bool) throws {
            if let lane { try emitAll(try lane.takeFinished()) }
            if pending.isEmpty { return }
            if !last && lane == nil { lane = try DestroyLane(netlink: SockDiagClient.openSocket(), batch: batchSize) }
            if !last, let lane, lane.offer(pending) {
                pending = []
                pending.reserveCapacity(batchSize)
                return
            }
            let netlink: NetlinkSocket
            if dumping {
                if midDump == nil { midDump = try SockDiagClient.openSocket() }
                netlink = midDump!
            } else {
                netlink = client.socket
            }
            let outcomes = try SockDiagClient.destroy(pending.lazy.map { $0.0 }, on: netlink, batch: batchSize)
            try emitAll(pending, outcomes)
            pending.removeAll(keepingCapacity: true)
        }
        do {
            try SocketSelection.collect(kinds: kinds, families: request.families, filter: request.filter, states: states,
                                        extensions: [], label: label, owners: owners, extra: extra, tcpInOneWalk: true,
                                        client: client, compiler: compiler) { s, iface in
                pending.append((s, iface))
                if pending.count >= batchSize { try flush(last: false) }
            }
            dumping = false
            try flush(last: true)
        } catch {
            _ = try? lane?.finish()
            throw error
        }
        if let lane { try emitAll(try lane.finish()) }
    }
}

/// A helper thread that destroys one batch at a time on its own netlink socket (see
/// `NetlinkPlan.selectAndDestroy`). Results go back to the thread that offered the batch, which
/// reports them; a destroy error is rethrown there.
final class DestroyLane: @unchecked Sendable {
    private let mutex = POSIXMutex()
    private let changed = POSIXCondition()
    private var job: [(Socket, String?)]?
    private var busy = false
    private var closing = false
    private var exited = false
    private var finished: [((Socket, String?), DestroyOutcome)] = []
    private var failure: Error?
    private let netlink: NetlinkSocket
    private let batch: Int

    init(netlink: NetlinkSocket, batch: Int) throws {
        self.netlink = netlink
        self.batch = batch
        try POSIXThread.start(name: "sockctl-destroy") { [self] in loop() }.detach()
    }

    /// Hands `work` to the lane when it is idle; false when it is still busy with the last batch.
    func offer(_ work: [(Socket, String?)]) -> Bool {
        mutex.lock(); defer { mutex.unlock() }
        guard !busy, failure == nil else { return false }
        job = work
        busy = true
        changed.broadcast()
        return true
    }

    /// What the lane destroyed since the last call.
    func takeFinished() throws -> [((Socket, String?), DestroyOutcome)] {
        mutex.lock(); defer { mutex.unlock() }
        if let failure { throw failure }
        defer { finished = [] }
        return finished
    }

    /// Waits for the batch in hand, stops the thread, and returns what is left to report.
    func finish() throws -> [((Socket, String?), DestroyOutcome)] {
        mutex.lock()
        closing = true
        changed.broadcast()
        while !exited { changed.wait(mutex) }
        mutex.unlock()
        return try takeFinished()
    }

    private func loop() {
        mutex.lock()
        while true {
            while job == nil && !closing { changed.wait(mutex) }
            guard let work = job else { break }
            job = nil
            mutex.unlock()
            let result = Result { try SockDiagClient.destroy(work.lazy.map { $0.0 }, on: netlink, batch: batch) }
            mutex.lock()
            switch result {
            case .success(let outcomes): finished += zip(work, outcomes)
            case .failure(let error): failure = error
            }
            busy = false
            changed.broadcast()
        }
        exited = true
        changed.broadcast()
        mutex.unlock()
    }
}
