import BPF
import Namespaces
import SockDiag
import SocketFilter
#if canImport(Glibc)
import Glibc
#endif

/// One backend's work in one namespace, run on a thread inside it (labels name the namespace).
struct Engine: @unchecked Sendable {
    typealias Found = [(Socket, String?)]
    typealias Emit = (KillResult) throws -> Void
    /// Fails (KillError) when destroying cannot work here; touches only a socket of our own.
    var probe: (String?) throws -> Void
    /// Selects without destroying (for `max`).
    var select: (String?) throws -> Found
    /// Destroys exactly these (by cookie).
    var destroy: (Found, String?, Emit) throws -> Void
    /// Select and destroy in one go (or a dry run).
    var run: (String?, Emit) throws -> Void
    var clauseCount = 0
    /// How destroying was already probed while this engine was chosen (then `probe` does nothing
    /// more), for `KillSummary.probe`; nil when `probe` does the probing.
    var probedWhenChosen: String?

    init(probe: @escaping (String?) throws -> Void, select: @escaping (String?) throws -> Found,
         destroy: @escaping (Found, String?, Emit) throws -> Void, run: @escaping (String?, Emit) throws -> Void) {
        self.probe = probe
        self.select = select
        self.destroy = destroy
        self.run = run
    }

    init(netlink plan: NetlinkPlan) {
        self.init(probe: { try SocketKiller.probe(label: $0) },
                  select: { try plan.select(label: $0) },
                  destroy: { try plan.destroy($0, label: $1, $2) },
                  run: { try plan.selectAndDestroy(label: $0, $1) })
    }
}

extension KillError {
    /// Why BPF was not used, for `-v` when auto falls back.
    var bpfReason: String? {
        switch self {
        case .bpfUnavailable(let d), .notTranslatable(let d): return d
        default: return nil
        }
    }
}

/// The process-wide BPF destroyer: loading and verifying the programs costs milliseconds, so it is
/// done once and shared (its destroy() calls are serialized).
enum SharedDestroyer {
    private static let lock = POSIXMutex()
    nonisolated(unsafe) private static var loaded: Result<BPFSocketDestroyer, BPFError>?

    /// Whether a destroyer is loaded in this process already (then BPF costs nothing extra).
    static var isLoaded: Bool {
        lock.withLock { if case .success = loaded { return true } else { return false } }
    }

    nonisolated(unsafe) private static var second: BPFSocketDestroyer?

    /// A second destroyer (programs and maps of its own), loaded by `SocketKiller.preloadBPF()`:
    /// with it, a kill in one namespace runs two half passes (by cookie parity) on two threads.
    static var helper: BPFSocketDestroyer? { lock.withLock { second } }

    /// Loads the second destroyer (after the first); nil when loaded, otherwise why not.
    static func loadHelper() -> String? {
        lock.withLock {
            if second != nil { return nil }
            do { second = try BPFSocketDestroyer() } catch { return "\(error)" }
            return nil
        }
    }

    static func get() -> Result<BPFSocketDestroyer, BPFError> {
        lock.withLock {
            if let loaded, case .success = loaded { return loaded }
            // init checks libbpf and the kernel's BTF itself (isSupported() would parse the BTF twice).
            let r = Result { () throws(BPFError) in try BPFSocketDestroyer() }
            loaded = r
            return r
        }
    }
}

extension SocketKiller {
    /// The BPF engine for `request`, or why not (KillError.bpfUnavailable / .notTranslatable).
    static func bpfEngine(_ request: KillRequest, kinds: [SocketKind], netlink: NetlinkPlan,
                          spaces: [NetworkNamespace]?, parallelism: Int) -> Result<Engine, KillError> {
        var protocols: Set<BPFDestroySpec.TransportProtocol> = []
        if kinds.contains(.tcp) { protocols.insert(.tcp) }
        if kinds.contains(.udp) { protocols.insert(.udp) }
        if protocols.isEmpty { return .failure(.notTranslatable("no TCP or UDP sockets asked for (BPF iterates TCP and UDP only)")) }
        if request.filter.needsProcesses { return .failure(.notTranslatable("pid/comm terms are decided in userspace")) }
        // The UDP mask (all but TIME-WAIT): iter/tcp never meets unhashed CLOSE / BOUND-INACTIVE sockets.
        let states = SocketSelection.kernelStateMask(request.filter.stateMask ?? netlink.states(.udp))
        let spec: BPFDestroySpec?
        switch BPFTranslation.translate(filter: request.filter, states: states, families: request.families,
                                        protocols: protocols, cookies: request.cookies, dryRun: request.dryRun) {
        case .untranslatable(let why): return .failure(.notTranslatable(why))
        case .matchesNothing: spec = nil
        case .spec(let s): spec = s
        }
        if request.backend == .auto, let spaces, spaces.count > 1 {
            // The TCP iterator walks the host-wide established hash once per namespace (as a
            // netlink dump does, but several times slower per bucket: established_get_first),
            // so over many namespaces netlink wins.
            return .failure(.bpfUnavailable("auto: \(spaces.count) namespaces: the BPF iterator walks the host-wide socket table once per namespace, netlink is faster"))
        }
        if request.backend == .auto && !SharedDestroyer.isLoaded {
            // Loading the programs (~50 ms) plus one iterator pass is slower than netlink's
            // pipelined dump and two destroy lanes at every table size measured (scripts/bench
            // kill, 100,000 sockets: 311 vs 272 ms; 1% of them: 119 vs 44 ms); once loaded (the
            // daemon preloads them) one pass with no netlink messages is the faster path.
            return .failure(.bpfUnavailable("auto: the BPF programs are not loaded in this process, and loading them costs more than netlink saves"))
        }
        let destroyer: BPFSocketDestroyer
        switch SharedDestroyer.get() {
        case .success(let d): destroyer = d
        case .failure(let e): return .failure(.bpfUnavailable("\(e)"))
        }
        // With one target namespace, its probe happens here, where auto can still fall back to
        // netlink; over several (forced bpf), each namespace is probed before any destroy.
        var probedAlready = false
        if !request.dryRun && (spaces?.count ?? 1) == 1 {
            do {
                if let ns = spaces?.first {
                    try NamespaceRunner.run(in: ns) { () throws -> Void in try destroyer.probe() }
                } else {
                    try destroyer.probe()
                }
                probedAlready = true
            } catch let e as NamespaceError {
                return .failure(.bpfUnavailable("\(e)"))
            } catch {
                return .failure(.bpfUnavailable("\(error)"))
            }
        }
        // Raw sockets (no BPF iterator) go through netlink, by cookie.
        let rawPlan: NetlinkPlan? = kinds.contains(.raw) ? netlink.with(kinds: [.raw]) : nil
        let dryRun = request.dryRun

        func socket(_ r: BPFDestroyRecord, _ label: String?) -> Socket {
            var s = Socket(family: UInt8(r.family), kind: r.ipProtocol == IPPROTO_TCP ? .tcp : .udp,
                           state: SocketState(rawValue: r.state))
            func address(_ w: (UInt32, UInt32, UInt32, UInt32)) -> InetAddress {
                // Word memory order is byte order on both sides: a plain copy, no byte array.
                InetAddress(family: UInt8(r.family), bytes: (UInt64(w.0) | UInt64(w.1) << 32, UInt64(w.2) | UInt64(w.3) << 32))
            }
            s.source = address(r.sourceWords)
            s.destination = address(r.destinationWords)
            s.sourcePort = r.sourcePort
            s.destinationPort = r.destinationPort
            s.uid = r.uid
            s.cookie = r.cookie
            s.netns = label
            return s
        }
        /// One iterator pass; request sockets it cannot take are destroyed by cookie over netlink.
        /// Results are emitted per read() of the iterator, so the caller prints while the kernel
        /// goes on destroying.
        func pass(_ spec: BPFDestroySpec, _ label: String?, on destroyer: BPFSocketDestroyer = destroyer,
                  _ emit: Engine.Emit) throws {
            var viaNetlink: [Socket] = []
            var emitError: Error?
            do {
                _ = try destroyer.destroy(spec) { records in
                    guard emitError == nil else { return }
                    do {
                        for r in records {
                            let outcome: KillOutcome
                            switch r.outcome {
                            case .destroyed: outcome = .destroyed
                            case .wouldDestroy: outcome = .wouldDestroy
                            case .notDestroyable: outcome = .notDestroyable
                            case .failed(let e) where e == ENOENT: outcome = .alreadyGone
                            case .failed(let e): outcome = .failed(errno: e, message: String(cString: strerror(e)))
                            case .needsNetlink:
                                if spec.dryRun { outcome = .wouldDestroy } else { viaNetlink.append(socket(r, label)); continue }
                            }
                            try emit(KillResult(socket: socket(r, label), interface: nil, netns: label, outcome: outcome))
                        }
                    } catch {
                        emitError = error  // e.g. the consumer stopped; the kernel pass still ends normally
                    }
                }
            } catch {
                throw KillError.bpfUnavailable("\(error)")
            }
            if let emitError { throw emitError }
            if !viaNetlink.isEmpty {
                try netlink.destroy(viaNetlink.map { ($0, nil) }, label: label, emit)
            }
        }

        var engine = Engine(
            probe: { label in
                if probedAlready { return }
                do { try destroyer.probe() } catch {
                    throw KillError.bpfUnavailable("netns \(label ?? "current"): \(error)")
                }
            },
            select: { label in
                var found: Engine.Found = []
                if var s = spec {
                    s.dryRun = true
                    try pass(s, label) { found.append(($0.socket, $0.interface)) }
                }
                if let rawPlan { found += try rawPlan.select(label: label) }
                return found
            },
            destroy: { found, label, emit in
                let inet = found.filter { $0.0.kind == .tcp || $0.0.kind == .udp }
                if !inet.isEmpty {
                    if dryRun {
                        for (s, i) in inet { try emit(KillResult(socket: s, interface: i, netns: label, outcome: s.state == .timeWait ? .notDestroyable : .wouldDestroy)) }
                    } else {
                        // Exactly the selected cookies, still narrowed by the clauses.
                        var s = spec ?? BPFDestroySpec(protocols: protocols)
                        s.cookies = Set(inet.map { $0.0.cookie })
                        s.everything = false
                        var seen = Set<UInt64>()
                        try pass(s, label) { r in seen.insert(r.socket.cookie); try emit(r) }
                        // Selected but not met again: closed in between.
                        for (sock, i) in inet where !seen.contains(sock.cookie) {
                            try emit(KillResult(socket: sock, interface: i, netns: label, outcome: .alreadyGone))
                        }
                    }
                }
                let raw = found.filter { $0.0.kind == .raw }
                if let rawPlan, !raw.isEmpty { try rawPlan.destroy(raw, label: label, emit) }
            },
            run: { label, emit in
                if let s = spec, !s.dryRun, let helper = SharedDestroyer.helper {
                    // Two half passes at once: odd cookies on a helper thread (created here, so in
                    // this namespace) with the second destroyer, even ones here; the kernel's
                    // destroy work then runs on two cores. The helper's results are emitted after.
                    var odd = s
                    odd.shard = (1, 2)
                    var even = s
                    even.shard = (0, 2)
                    let other = HalfPass { var out: [KillResult] = []; try pass(odd, label, on: helper) { out.append($0) }; return out }
                    var mine: Error?
                    do { try pass(even, label, emit) } catch { mine = error }
                    let theirs = other.wait()
                    if let mine { throw mine }
                    for r in try theirs.get() { try emit(r) }
                } else if let s = spec {
                    try pass(s, label, emit)
                }
                if let rawPlan { try rawPlan.selectAndDestroy(label: label, emit) }
            })
        engine.clauseCount = spec?.clauses.count ?? 0
        if probedAlready {
            engine.probedWhenChosen = "bpf_sock_destroy on one socket of our own in "
                + (spaces?.first.map { "netns \($0.label)" } ?? "this namespace") + ", as the backend was chosen"
        }
        return .success(engine)
    }
}

extension SocketKiller {
    /// Loads and verifies the BPF destroy programs now, once per process, so that later `.auto`
    /// kills in one namespace take the BPF backend without paying the load (~50 ms a copy) then;
    /// also a second copy, so that such a kill splits its pass over two threads. A daemon calls
    /// this at start. Returns nil when loaded, otherwise why not.
    public static func preloadBPF() -> String? {
        switch SharedDestroyer.get() {
        case .success: return SharedDestroyer.loadHelper()
        case .failure(let e): return "\(e)"
        }
    }
}

/// One half pass on a thread of its own (it inherits the creating thread's network namespace).
final class HalfPass: @unchecked Sendable {
    private let mutex = POSIXMutex()
    private let changed = POSIXCondition()
    private var result: Result<[KillResult], Error>?

    init(_ work: @escaping () throws -> [KillResult]) {
        do {
            try POSIXThread.start(name: "sockctl-half-pass") { [self] in
                let r = Result { try work() }
                mutex.lock()
                result = r
                changed.broadcast()
                mutex.unlock()
            }.detach()
        } catch {
            result = .failure(error)
        }
    }

    func wait() -> Result<[KillResult], Error> {
        mutex.lock()
        defer { mutex.unlock() }
        while result == nil { changed.wait(mutex) }
        return result!
    }
}
