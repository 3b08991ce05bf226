import Foundation
import Logging
import Namespaces
import SocketFilter
#if canImport(Glibc)
import Glibc
#endif

/// The daemon's core: the policy in force, the namespaces watched, and every kill (event,
/// interval, API). Thread-safe: route monitors call in from their namespace threads.
public final class PolicyEngine: @unchecked Sendable {
    public struct Options: Sendable {
        public var configPath: String
        /// Global audit: every rule only reports.
        public var auditAll = false
        /// How often all namespaces are scanned again (besides /run/netns changes).
        public var rescanInterval: Double = 5
        public var netnsDirectory = "/run/netns"
        /// Load the BPF destroy programs at start, so that kills in one namespace (every event
        /// kill) take the BPF backend (`--backend auto` picks it once loaded): one pass of the
        /// kernel's socket iterator destroys them, no netlink dump and destroy messages.
        public var preloadBPF = true

        public init(configPath: String) { self.configPath = configPath }
    }

    public let options: Options
    let killer: SocketKilling
    public let metrics: DaemonMetrics
    public let hub = EventHub()
    /// Event and interval kills report (JSON lines, metrics, SSE) here, after their destroys.
    let reporter = Reporter()
    let logger: Logger
    /// Receives one JSON line per socket acted on (stdout in the daemon).
    let output: @Sendable (String) -> Void

    private let lock = NSLock()
    private var current: Policy
    private var namespaces: [NetworkNamespace] = []
    private var monitors: [NamespaceIdentity: RouteMonitor] = [:]
    private var intervalTasks: [Task<Void, Never>] = []
    /// Interval rules: cookies each has acted on already. A destroyed UDP socket that was bound to
    /// an address stays in the socket table (the kernel only disconnects it), so without this an
    /// interval rule would report it again on every run.
    private var acted: [String: Set<UInt64>] = [:]

    public init(options: Options, killer: SocketKilling, metrics: DaemonMetrics, logger: Logger,
                output: @escaping @Sendable (String) -> Void) throws {
        self.options = options
        self.killer = killer
        self.metrics = metrics
        self.logger = logger
        self.output = output
        current = try PolicyLoader.load(path: options.configPath)
    }

    public var policy: Policy { lock.withLock { current } }

    // MARK: reload

    /// Loads the file again; on any error the policy in force stays and the error is returned.
    @discardableResult
    public func reload() -> Result<Policy, PolicyError> {
        do {
            let p = try PolicyLoader.load(path: options.configPath)
            lock.withLock { current = p }
            metrics.reload(ok: true)
            logger.info("policy reloaded", metadata: ["rules": "\(p.rules.count)", "file": "\(p.path)"])
            rescan()
            restartIntervals()
            return .success(p)
        } catch let e as PolicyError {
            metrics.reload(ok: false)
            logger.error("policy reload rejected; the previous policy stays in force", metadata: ["error": "\(e)"])
            return .failure(e)
        } catch {
            metrics.reload(ok: false)
            let e = PolicyError(file: options.configPath, line: 0, column: 0, message: "\(error)")
            return .failure(e)
        }
    }

    // MARK: namespaces

    /// Namespaces whose monitor is running and has read its tables.
    public var watchedNamespaces: [String] {
        lock.withLock { monitors.values.filter { $0.isReady }.map { $0.namespace.label }.sorted() }
    }

    /// Scans for namespaces, starts a monitor in each one an event rule covers, stops those of
    /// namespaces that are gone or no longer covered.
    public func rescan() {
        let p = policy
        let eventRules = p.rules.filter { [.addressRemoved, .linkDown, .linkUp].contains($0.trigger) }
        let needsAll = p.rules.contains { if case .all = $0.netns { return true }; return false }
            || p.rules.contains { if case .patterns(let ps) = $0.netns { return ps.contains("host") }; return false }
        var found: [NetworkNamespace] = []
        if needsAll {
            found = (try? NetworkNamespace.discoverAll()) ?? []
        } else {
            found = scanNamed()
        }
        lock.lock()
        namespaces = found
        let wanted = found.filter { ns in eventRules.contains { $0.netns.covers(name: ns.name, isHost: ns.isHost) } }
        let wantedIDs = Set(wanted.map(\.identity))
        var started: [RouteMonitor] = []
        for ns in wanted where monitors[ns.identity] == nil {
            let m = RouteMonitor(namespace: ns) { [weak self] ns, e, t in self?.routeEvent(e, in: ns, receivedAt: t) }
            monitors[ns.identity] = m
            started.append(m)
        }
        var stopped: [RouteMonitor] = []
        for (id, m) in monitors where !wantedIDs.contains(id) {
            stopped.append(m)
            monitors[id] = nil
        }
        lock.unlock()
        for m in started {
            m.start()
            logger.info("watching network namespace", metadata: ["netns": "\(m.namespace.label)"])
        }
        for m in stopped {
            m.stop()
            logger.info("stopped watching network namespace", metadata: ["netns": "\(m.namespace.label)"])
        }
    }

    /// The named namespaces under /run/netns (enough when no rule asks for `all` or `host`).
    private func scanNamed() -> [NetworkNamespace] {
        NamespaceResolver(netnsDirectory: options.netnsDirectory).named()
    }

    /// Namespaces known at the last scan that `selector` covers.
    func namespaces(covered selector: NamespaceSelector) -> [NetworkNamespace] {
        lock.withLock { namespaces }.filter { selector.covers(name: $0.name, isHost: $0.isHost) }
    }

    public func stopAll() {
        let ms = lock.withLock { () -> [RouteMonitor] in
            let all = Array(monitors.values)
            monitors = [:]
            intervalTasks.forEach { $0.cancel() }
            intervalTasks = []
            return all
        }
        ms.forEach { $0.stop() }
    }

    // MARK: events

    func routeEvent(_ event: RouteEvent, in ns: NetworkNamespace, receivedAt t0: UInt64) {
        let rules = policy.rules.filter { rule in
            guard rule.netns.covers(name: ns.name, isHost: ns.isHost) else { return false }
            if let pattern = rule.interface {
                guard let i = event.interface, fnmatch(pattern, i, 0) == 0 else { return false }
            }
            switch (rule.trigger, event) {
            case (.addressRemoved, .addressRemoved), (.linkDown, .linkDown), (.linkUp, .linkUp): return true
            default: return false
            }
        }
        logger.debug("route event", metadata: ["netns": "\(ns.label)", "event": "\(event)", "rules": "\(rules.count)"])
        for rule in rules {
            let term: String?
            let trigger: String
            switch event {
            case .addressRemoved(let a, let i):
                term = "src \(a)"
                trigger = "address-removed \(a)" + (i.map { " dev \($0)" } ?? "")
            case .linkDown(let i, let index, let addrs):
                term = (["dev \(index)"] + addrs.map { "src \($0)" }).joined(separator: " or ")
                trigger = "link-down \(i)"
            case .linkUp(let i, _):
                term = nil
                trigger = "link-up \(i)"
            }
            // On the monitor's own thread, already inside `ns`: no thread switch before the kill.
            run(rule, in: nil, label: ns.label, eventTerm: term, trigger: trigger, receivedAt: t0, deferReport: true)
        }
    }

    /// Runs one rule over `namespaces`; returns what was done. `deferReport`: the JSON lines,
    /// metrics and `/v1/events` records go to the reporting thread instead of being produced here
    /// (events and intervals: nobody waits for them, and the next event's destroys should not).
    @discardableResult
    func run(_ rule: Rule, in namespaces: [NetworkNamespace]?, label: String = "", eventTerm: String?, trigger: String,
             receivedAt t0: UInt64? = nil, deferReport: Bool = false) -> [KilledSocket] {
        if let namespaces, namespaces.isEmpty { return [] }
        guard var text = rule.filterText(eventTerm: eventTerm, cgroupDirectories: Self.cgroupTree) else {
            logger.debug("rule's cgroup does not exist; nothing selected", metadata: ["rule": "\(rule.name)"])
            return []
        }
        let isInterval: Bool = { if case .interval = rule.trigger { return true }; return false }()
        if isInterval, let done = lock.withLock({ acted[rule.name] }), !done.isEmpty {
            let skip = "not ( " + done.sorted().map { "cookie \($0)" }.joined(separator: " or ") + " )"
            text = text.map { "\($0) and \(skip)" } ?? skip
        }
        let filter: SocketFilter
        do {
            filter = try SocketFilter.parse(text ?? "")
        } catch {
            logger.error("rule filter failed to parse", metadata: ["rule": "\(rule.name)", "filter": "\(text ?? "")", "error": "\(error)"])
            return []
        }
        let audit = options.auditAll || rule.action == .audit
        do {
            let results = try killer.kill(KillOrder(filter: filter, namespaces: namespaces, currentLabel: label, dryRun: audit))
            if let t0, !audit, !results.isEmpty {
                metrics.eventToKill(nanoseconds: RouteMonitor.monotonicNanos() &- t0)
            }
            if isInterval && !results.isEmpty {
                lock.withLock {
                    if acted[rule.name, default: []].count > 100_000 { acted[rule.name] = [] }
                    acted[rule.name, default: []].formUnion(results.map(\.socket.cookie))
                }
            }
            if deferReport {
                if !results.isEmpty {
                    reporter.submit { [self] in record(results, rule: rule.name, trigger: trigger, audit: audit) }
                }
            } else {
                record(results, rule: rule.name, trigger: trigger, audit: audit)
            }
            return results
        } catch {
            logger.error("rule failed", metadata: ["rule": "\(rule.name)", "error": "\(error)"])
            metrics.destroyErrors(rule: rule.name, netns: namespaces?.map(\.label).joined(separator: ",") ?? label, count: 1)
            return []
        }
    }

    /// Metrics, JSON lines and `/v1/events` for what a kill did; returns the records.
    @discardableResult
    func record(_ results: [KilledSocket], rule: String, trigger: String, audit: Bool) -> [KillRecord] {
        guard !results.isEmpty else { return [] }
        var counts: [String: [String: Int]] = [:]
        var errors: [String: Int] = [:]
        let time = KillRecord.now()
        let action = audit ? "audit" : "kill"
        var lines: [String] = []
        var records: [KillRecord] = []
        lines.reserveCapacity(results.count)
        for r in results {
            if r.outcome == "destroyed" || r.outcome == "would-destroy" {
                counts[r.netns, default: [:]][r.socket.kind.rawValue, default: 0] += 1
            } else if r.outcome == "failed" {
                errors[r.netns, default: 0] += 1
            }
            let rec = KillRecord(r, rule: rule, trigger: trigger, action: action, time: time)
            records.append(rec)
            lines.append(rec.json)
        }
        for (ns, byProto) in counts {
            for (p, n) in byProto { metrics.destroyed(rule: rule, netns: ns, protocol: p, count: n, audit: audit) }
        }
        for (ns, n) in errors { metrics.destroyErrors(rule: rule, netns: ns, count: n) }
        output(lines.joined(separator: "\n") + "\n")
        hub.publish(records)
        logger.info(audit ? "audit: sockets would be destroyed" : "sockets destroyed",
                    metadata: ["rule": "\(rule)", "trigger": "\(trigger)", "count": "\(results.count)"])
        return records
    }

    /// A cgroup directory and every directory below it (nothing when it does not exist).
    static func cgroupTree(_ root: String) -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else { return [] }
        var out = [root]
        if let e = FileManager.default.enumerator(atPath: root) {
            while let rel = e.nextObject() as? String {
                var d: ObjCBool = false
                let full = root + "/" + rel
                if FileManager.default.fileExists(atPath: full, isDirectory: &d), d.boolValue { out.append(full) }
            }
        }
        return out
    }

    // MARK: intervals

    public func restartIntervals() {
        let rules = policy.rules
        lock.lock()
        intervalTasks.forEach { $0.cancel() }
        intervalTasks = rules.compactMap { rule in
            guard case .interval(let seconds) = rule.trigger else { return nil }
            return Task.detached { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
                    guard !Task.isCancelled, let self else { return }
                    // The rule as it is now (a reload may have changed it; then this task is cancelled).
                    let ns = self.namespaces(covered: rule.netns)
                    _ = self.run(rule, in: ns, eventTerm: nil, trigger: "interval", deferReport: true)
                }
            }
        }
        lock.unlock()
    }

    // MARK: API kills

    public struct APIKill: Sendable {
        public var filter: String
        public var netns: [String]
        public var dryRun: Bool
        public var max: Int?
        public var rule: String?
    }

    public enum APIError: Error {
        case badRequest(String, column: Int? = nil)
        case notFound(String)
        case conflict(String)
        case failed(String)
    }

    /// `POST /v1/kill`: filter (or a `request` rule's name), namespaces (names, paths, pids, "all";
    /// none = every namespace the daemon knows), dryRun, max.
    public func apiKill(_ req: APIKill) throws -> [KillRecord] {
        var namespaces: [NetworkNamespace] = []
        if req.netns == ["all"] {
            namespaces = (try? NetworkNamespace.discoverAll()) ?? []
        } else {
            for spec in req.netns {
                do { namespaces.append(try NamespaceResolver(netnsDirectory: options.netnsDirectory).resolve(spec)) } catch {
                    throw APIError.notFound("netns '\(spec)': \(error)")
                }
            }
        }
        if let name = req.rule {
            guard let rule = policy.rules.first(where: { $0.name == name }) else { throw APIError.notFound("no rule named '\(name)'") }
            if req.netns.isEmpty { namespaces = self.namespaces(covered: rule.netns) }
            var r = rule
            if req.dryRun { r.action = .audit }
            let done = run(r, in: namespaces, eventTerm: req.filter.isEmpty ? nil : req.filter, trigger: "request")
            let action = (options.auditAll || r.action == .audit) ? "audit" : "kill"
            return done.map { KillRecord($0, rule: name, trigger: "request", action: action, time: KillRecord.now()) }
        }
        guard !req.filter.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw APIError.badRequest("empty filter: give a filter expression (or a rule name)")
        }
        let filter: SocketFilter
        do { filter = try SocketFilter.parse(req.filter) } catch let e as FilterSyntaxError {
            throw APIError.badRequest("filter error at column \(e.column): \(e.message)", column: e.column)
        }
        if req.netns.isEmpty { namespaces = lock.withLock { self.namespaces } }
        let audit = options.auditAll || req.dryRun
        let results: [KilledSocket]
        do {
            results = try killer.kill(KillOrder(filter: filter, namespaces: namespaces, dryRun: audit, max: req.max))
        } catch let e as KillFailure {
            if case .tooMany = e { throw APIError.conflict(e.description) }
            throw APIError.failed(e.description)
        } catch {
            throw APIError.failed("\(error)")
        }
        return record(results, rule: "api", trigger: "request", audit: audit)
    }
}

/// Fans kill records out to `/v1/events` subscribers.
public final class EventHub: @unchecked Sendable {
    private let lock = NSLock()
    /// nil is a heartbeat (no kill).
    private var subscribers: [UUID: AsyncStream<KillRecord?>.Continuation] = [:]

    public func subscribe() -> (UUID, AsyncStream<KillRecord?>) {
        let id = UUID()
        let (stream, cont) = AsyncStream<KillRecord?>.makeStream(bufferingPolicy: .bufferingNewest(100_000))
        lock.withLock { subscribers[id] = cont }
        cont.onTermination = { [weak self] _ in self?.unsubscribe(id) }
        return (id, stream)
    }

    public func unsubscribe(_ id: UUID) {
        _ = lock.withLock { subscribers.removeValue(forKey: id) }
    }

    public func publish(_ records: [KillRecord]) {
        let subs = lock.withLock { Array(subscribers.values) }
        for s in subs { for r in records { s.yield(r) } }
    }

    public func heartbeat() {
        let subs = lock.withLock { Array(subscribers.values) }
        for s in subs { s.yield(nil) }
    }

    public func finishAll() {
        let subs = lock.withLock { () -> [AsyncStream<KillRecord?>.Continuation] in
            let all = Array(subscribers.values)
            subscribers = [:]
            return all
        }
        subs.forEach { $0.finish() }
    }
}
