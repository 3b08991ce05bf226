#if canImport(Glibc)
import Glibc
#endif
import CLinuxUAPI
import Foundation

/// `sockctl run`'s configuration.
public struct SupervisorConfig {
    public var name: String
    public var controlPath: String
    public var notifyPath: String
    public var listeners: [ListenerSpec]
    /// argv[0] as given, resolved path, arguments.
    public var command: [String]
    public var executable: String
    public var ready: Readiness = .notify
    public var readyTimeout: Double = 30
    public var drainTimeout: Double = 30
    public var stopSignal: Int32 = SIGTERM
    public var migrate = false
    /// Crash restarts: the first waits backoffMin, each further one of a generation that lived
    /// less than backoffResetAfter waits twice as long, up to backoffMax.
    public var backoffMin = 0.1
    public var backoffMax = 5.0
    public var backoffResetAfter = 10.0
    /// How many fds generations may deposit with FDSTORE=1 (systemd's FileDescriptorStoreMax=);
    /// 0 refuses them.
    public var fdStoreMax = 0

    public init(name: String, controlPath: String, notifyPath: String, listeners: [ListenerSpec], command: [String], executable: String) {
        self.name = name
        self.controlPath = controlPath
        self.notifyPath = notifyPath
        self.listeners = listeners
        self.command = command
        self.executable = executable
    }
}

/// The generations supervisor and fd holder: holds the listeners for as long as it runs, starts
/// generations of the command with them, upgrades one generation to the next, restarts crashes.
///
/// A single-threaded poll(2) loop over the control socket, NOTIFY_SOCKET, a signal self-pipe and a
/// wake pipe for tcp/http readiness threads. All state is touched on that thread only.
public final class Supervisor {
    enum State: String { case starting, active, draining, failed }

    final class Generation {
        let id: Int
        let pid: Int32
        var state: State = .starting
        let startedAt: Double
        var readyAt: Double?
        var signaledAt: Double?
        var killed = false
        init(id: Int, pid: Int32, startedAt: Double) { self.id = id; self.pid = pid; self.startedAt = startedAt }
    }

    /// An upgrade in progress: the new generation and who to tell when it ends.
    final class Upgrade {
        let newGeneration: Int
        var clients: [Int32]
        let startedAt: Double
        var readyAt: Double?
        var drainStartedAt: Double?
        var waitingFor: Set<Int32> = []
        var oldPids: [Int32] = []
        var killedPids: [Int32] = []
        init(newGeneration: Int, clients: [Int32], startedAt: Double) {
            self.newGeneration = newGeneration; self.clients = clients; self.startedAt = startedAt
        }
    }

    public let config: SupervisorConfig
    let env: ProcessEnvironment
    public internal(set) var listeners: [Listener] = []
    /// The fd store: fds deposited by generations (FDSTORE=1), passed to every later generation
    /// after the listeners, under their FDNAME.
    var stored: [(name: String, fd: Int32)] = []
    var generations: [Generation] = []
    var nextGeneration = 1
    var upgrade: Upgrade?
    var controlFd: Int32 = -1
    var notify: NotifyReceiver?
    var signalFd: Int32 = -1
    var wakePipe: [Int32] = [-1, -1]
    var clients: [Int32: [UInt8]] = [:]
    var restartAt: Double?
    var backoff: Double
    var shuttingDown = false
    var upgrades = 0, failedUpgrades = 0, restarts = 0
    var lastUpgrade: String?
    let readyLock = NSLock()
    var readyFromThreads: [Int] = []
    /// Generations a readiness thread still probes for (guarded by readyLock).
    var probing: Set<Int> = []
    public var log: (String) -> Void

    public init(config: SupervisorConfig, environment: ProcessEnvironment = .live) {
        self.config = config
        env = environment
        backoff = config.backoffMin
        let name = config.name
        log = { line in FileHandle.standardError.write(Data("sockctl run[\(name)]: \(line)\n".utf8)) }
    }

    // MARK: start-up: everything opened here is closed again if a later step fails.

    /// Open the control socket, the listeners (adopting those inherited from systemd by name),
    /// NOTIFY_SOCKET, and start generation 1. Throws with nothing left open.
    public func start() throws {
        do {
            try makeDirectories(for: config.controlPath)
            if FileManager.default.fileExists(atPath: config.controlPath),
               let fd = try? UnixSocket.connect(config.controlPath) {
                close(fd)
                throw HandoffError.config("a supervisor named '\(config.name)' already runs (control socket \(config.controlPath)); pick another --name")
            }
            if config.migrate { try MigrateReq.enable() }
            controlFd = try UnixSocket.listen(config.controlPath)
            try openListeners()
            if config.ready == .tcp(host: nil, port: nil), firstTCPListener() == nil {
                throw HandoffError.config("--ready tcp connects to the first tcp listener, and there is none; give --ready tcp://ADDR:PORT")
            }
            notify = try NotifyReceiver(path: config.notifyPath)
            var sigs: [Int32] = [SIGCHLD, SIGHUP, SIGTERM, SIGINT]
            signalFd = sockctl_signal_pipe(&sigs, Int32(sigs.count))
            guard signalFd >= 0 else { throw HandoffError.sys("sigaction", "SIGCHLD/SIGHUP/SIGTERM/SIGINT") }
            signal(SIGPIPE, SIG_IGN)
            guard sockctl_pipe2(&wakePipe, O_CLOEXEC | O_NONBLOCK) == 0 else { throw HandoffError.sys("pipe2", "wake pipe") }
            _ = try spawnGeneration()
        } catch {
            cleanup()
            throw error
        }
    }

    /// mkdir -p of the control socket's directory; errors name the directory (EACCES → exit 3).
    func makeDirectories(for socketPath: String) throws {
        var dir = ""
        for part in (socketPath as NSString).deletingLastPathComponent.split(separator: "/") {
            dir += "/" + part
            if mkdir(dir, 0o755) != 0 && errno != EEXIST {
                throw HandoffError.sys("mkdir", "\(dir), the directory of the control socket \(socketPath)")
            }
        }
    }

    func firstTCPListener() -> (String, UInt16)? {
        listeners.compactMap(\.spec).first { $0.kind == .tcp }.map { ($0.address, $0.port) }
    }

    func openListeners() throws {
        let inherited = try ListenFDs.parse(environment: env.environment(), pid: getpid())
        unsetenv("LISTEN_FDS"); unsetenv("LISTEN_PID"); unsetenv("LISTEN_FDNAMES")
        for entry in inherited {
            var st = stat()
            guard fstat(entry.fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFSOCK else {
                throw HandoffError.listenEnvironment("inherited fd \(entry.fd) (\(entry.name)) is not an open socket")
            }
        }
        var unclaimed = inherited
        for spec in config.listeners {
            if let i = unclaimed.firstIndex(where: { $0.name == spec.name }) {
                let fd = unclaimed.remove(at: i).fd
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                listeners.append(Listener(name: spec.name, fd: fd, spec: spec, inherited: true))
                log("listener \(spec.name): inherited fd \(fd) from our parent (socket activation)")
            } else {
                listeners.append(try Listener.open(spec))
                log("listener \(spec.name): \(spec.url) on fd \(listeners.last!.fd)")
            }
        }
        for entry in unclaimed {
            _ = fcntl(entry.fd, F_SETFD, FD_CLOEXEC)
            listeners.append(Listener(name: entry.name, fd: entry.fd, spec: nil, inherited: true))
            log("listener \(entry.name): inherited fd \(entry.fd), passed on as is")
        }
    }

    func cleanup() {
        for l in listeners {
            close(l.fd)
            if let spec = l.spec, spec.kind == .unix, !l.inherited, !spec.address.hasPrefix("@") { unlink(spec.address) }
        }
        listeners = []
        for s in stored { close(s.fd) }
        stored = []
        if controlFd >= 0 { close(controlFd); unlink(config.controlPath); controlFd = -1 }
        notify = nil
        for fd in clients.keys { close(fd) }
        clients = [:]
        for fd in wakePipe where fd >= 0 { close(fd) }
        wakePipe = [-1, -1]
    }

    // MARK: generations

    func spawnGeneration() throws -> Generation {
        var childEnv = env.environment().filter { !$0.key.hasPrefix("LISTEN_") && $0.key != "NOTIFY_SOCKET" }
        for (k, v) in ListenFDs.environment(names: listeners.map(\.name) + stored.map(\.name)) { childEnv[k] = v }
        childEnv["NOTIFY_SOCKET"] = config.notifyPath
        let id = nextGeneration
        childEnv["SOCKCTL_GENERATION"] = String(id)
        let pid = try env.spawn(config.executable, config.command, childEnv, listeners.map(\.fd) + stored.map(\.fd))
        nextGeneration += 1
        let gen = Generation(id: id, pid: pid, startedAt: env.now())
        generations.append(gen)
        log("generation \(id): started pid \(pid) (waiting for \(config.ready))")
        startReadinessThread(for: gen)
        return gen
    }

    /// tcp/http checks run on a helper thread per starting generation: one probe every 100 ms until
    /// one passes (reported through the wake pipe), the generation stops starting, or its deadline.
    func startReadinessThread(for gen: Generation) {
        guard let (host, port, path) = config.ready.target(generation: gen.id, firstTCP: firstTCPListener()) else { return }
        let id = gen.id, deadline = gen.startedAt + config.readyTimeout, env = self.env, wake = wakePipe[1]
        readyLock.lock(); probing.insert(id); readyLock.unlock()
        let thread = Thread { [weak self] in
            while env.now() < deadline {
                guard let self, self.stillProbing(id) else { return }
                if env.probe(host, port, path) {
                    self.readyLock.lock(); self.readyFromThreads.append(id); self.probing.remove(id); self.readyLock.unlock()
                    var b: UInt8 = 1
                    _ = write(wake, &b, 1)
                    return
                }
                usleep(100_000)
            }
        }
        thread.start()
    }

    /// Mark ready the generations whose check passed on a helper thread.
    func collectReadiness() {
        readyLock.lock(); let ids = readyFromThreads; readyFromThreads = []; readyLock.unlock()
        for id in ids { if let g = generation(id) { markReady(g) } }
    }

    func stillProbing(_ id: Int) -> Bool {
        readyLock.lock(); defer { readyLock.unlock() }
        return probing.contains(id)
    }

    func stopProbing(_ id: Int) {
        readyLock.lock(); probing.remove(id); readyLock.unlock()
    }

    func generation(_ id: Int) -> Generation? {
        generations.first { $0.id == id }
    }

    func markReady(_ gen: Generation) {
        guard gen.state == .starting else { return }
        stopProbing(gen.id)
        gen.state = .active
        gen.readyAt = env.now()
        log("generation \(gen.id) (pid \(gen.pid)): ready after \(ms(gen.readyAt! - gen.startedAt)) ms")
        let old = generations.filter { $0 !== gen && ($0.state == .active || $0.state == .starting) }
        for o in old { stopGeneration(o) }
        if let up = upgrade, up.newGeneration == gen.id {
            up.readyAt = gen.readyAt
            up.drainStartedAt = env.now()
            up.oldPids = old.map(\.pid)
            up.waitingFor = Set(old.map(\.pid))
            if up.waitingFor.isEmpty { finishUpgrade(ok: true, message: "generation \(gen.id) (pid \(gen.pid)) is serving") }
        }
    }

    func stopGeneration(_ gen: Generation) {
        guard gen.state != .draining else { return }
        stopProbing(gen.id)
        gen.state = .draining
        gen.signaledAt = env.now()
        env.kill(gen.pid, config.stopSignal)
        log("generation \(gen.id) (pid \(gen.pid)): sent signal \(config.stopSignal), draining for up to \(DurationParser.format(config.drainTimeout))")
    }

    func reap() {
        while let (pid, status) = env.reap() {
            guard let i = generations.firstIndex(where: { $0.pid == pid }) else { continue }
            let gen = generations.remove(at: i)
            stopProbing(gen.id)
            let how = describeExit(status)
            let now = env.now()
            switch gen.state {
            case .draining:
                log("generation \(gen.id) (pid \(pid)): \(how) after \(ms(now - (gen.signaledAt ?? now))) ms of draining")
            case .starting:
                log("generation \(gen.id) (pid \(pid)): \(how) before it was ready")
                if let up = upgrade, up.newGeneration == gen.id {
                    finishUpgrade(ok: false, message: "upgrade failed: generation \(gen.id) (pid \(pid)) \(how) before it was ready; \(servingText())")
                }
            case .active, .failed:
                log("generation \(gen.id) (pid \(pid)): \(how) while serving; listeners stay open")
            }
            if let up = upgrade, up.waitingFor.remove(pid) != nil, up.waitingFor.isEmpty, up.readyAt != nil {
                finishUpgrade(ok: true, message: "generation \(up.newGeneration) is serving; old generation(s) \(up.oldPids.map(String.init).joined(separator: ",")) gone")
            }
            if gen.state != .draining && !shuttingDown { scheduleRestartIfIdle(crashedEarly: now - gen.startedAt < config.backoffResetAfter) }
        }
    }

    func scheduleRestartIfIdle(crashedEarly: Bool) {
        guard restartAt == nil, !generations.contains(where: { $0.state == .active || $0.state == .starting }) else { return }
        if upgrade != nil { return }
        if !crashedEarly { backoff = config.backoffMin }
        restartAt = env.now() + backoff
        log("no generation serving: restarting in \(ms(backoff)) ms; the kernel queues new connections meanwhile")
        backoff = min(backoff * 2, config.backoffMax)
    }

    func servingText() -> String {
        let serving = generations.filter { $0.state == .active }
        return serving.isEmpty ? "no generation is serving (restart pending)" :
            "generation \(serving.map { "\($0.id) (pid \($0.pid))" }.joined(separator: ", ")) keeps serving"
    }

    // MARK: upgrades

    func beginUpgrade(client: Int32?) {
        if shuttingDown {
            reply(client, ControlProtocol.Reply(ok: false, message: "upgrade refused: the supervisor is shutting down"))
            return
        }
        if let up = upgrade {
            if let client { reply(client, ControlProtocol.Reply(ok: false, message: "upgrade refused: the upgrade to generation \(up.newGeneration) is still in progress (started \(ms(env.now() - up.startedAt)) ms ago); one upgrade at a time, try again when it ends")) }
            else { log("SIGHUP ignored: the upgrade to generation \(up.newGeneration) is still in progress") }
            return
        }
        restartAt = nil
        upgrades += 1
        do {
            let gen = try spawnGeneration()
            upgrade = Upgrade(newGeneration: gen.id, clients: client.map { [$0] } ?? [], startedAt: env.now())
        } catch {
            failedUpgrades += 1
            let message = "upgrade failed: cannot start the new generation: \(error); \(servingText())"
            lastUpgrade = message
            log(message)
            reply(client, ControlProtocol.Reply(ok: false, message: message))
            scheduleRestartIfIdle(crashedEarly: true)
        }
    }

    func finishUpgrade(ok: Bool, message: String) {
        guard let up = upgrade else { return }
        upgrade = nil
        if !ok { failedUpgrades += 1 }
        lastUpgrade = message
        log(message)
        var result: ControlProtocol.UpgradeResult?
        if ok, let gen = generations.first(where: { $0.id == up.newGeneration }) ?? nil {
            result = ControlProtocol.UpgradeResult(
                generation: gen.id, pid: gen.pid, readyMs: ms((up.readyAt ?? up.startedAt) - up.startedAt),
                drainMs: ms(env.now() - (up.drainStartedAt ?? env.now())), oldPids: up.oldPids, killedPids: up.killedPids)
        }
        for c in up.clients { reply(c, ControlProtocol.Reply(ok: ok, message: message, upgrade: result)) }
        if !ok { scheduleRestartIfIdle(crashedEarly: true) }
    }

    // MARK: timers

    func checkTimers() {
        let now = env.now()
        for gen in generations {
            switch gen.state {
            case .starting:
                if case let .delay(d) = config.ready, now - gen.startedAt >= d { markReady(gen); continue }
                if now - gen.startedAt >= config.readyTimeout {
                    let why: String
                    switch config.ready {
                    case .notify: why = "no READY=1 on NOTIFY_SOCKET"
                    default: why = "the \(config.ready) check did not pass"
                    }
                    let message = "upgrade failed: generation \(gen.id) (pid \(gen.pid)) was not ready within \(DurationParser.format(config.readyTimeout)) (\(why)); stopped it; \(servingText())"
                    stopGeneration(gen)
                    if let up = upgrade, up.newGeneration == gen.id { finishUpgrade(ok: false, message: message) }
                    else {
                        log("generation \(gen.id) (pid \(gen.pid)): not ready within \(DurationParser.format(config.readyTimeout)); stopped it")
                        scheduleRestartIfIdle(crashedEarly: true)
                    }
                }
            case .draining:
                if !gen.killed, let t = gen.signaledAt, now - t >= config.drainTimeout {
                    gen.killed = true
                    env.kill(gen.pid, SIGKILL)
                    upgrade?.killedPids.append(gen.pid)
                    log("generation \(gen.id) (pid \(gen.pid)): still running after --drain-timeout \(DurationParser.format(config.drainTimeout)); sent SIGKILL")
                }
            default: break
            }
        }
        if let at = restartAt, now >= at, !shuttingDown {
            restartAt = nil
            restarts += 1
            do { _ = try spawnGeneration() } catch {
                log("restart failed: \(error)")
                scheduleRestartIfIdle(crashedEarly: true)
            }
        }
    }

    func nextTimeout() -> Int32 {
        let now = env.now()
        var next = now + 1
        for gen in generations {
            if gen.state == .starting {
                next = min(next, gen.startedAt + config.readyTimeout)
                if case let .delay(d) = config.ready { next = min(next, gen.startedAt + d) }
            }
            if gen.state == .draining, !gen.killed, let t = gen.signaledAt { next = min(next, t + config.drainTimeout) }
        }
        if let at = restartAt { next = min(next, at) }
        return Int32(max(0, min(1000, ((next - now) * 1000).rounded(.up))))
    }

    // MARK: the loop

    /// Run until SIGTERM/SIGINT and every generation has exited. Returns the exit status.
    public func run() -> Int32 {
        while true {
            if shuttingDown && generations.isEmpty {
                if let up = upgrade { finishUpgrade(ok: false, message: "upgrade to generation \(up.newGeneration) aborted: the supervisor is shutting down") }
                cleanup()
                log("all generations gone; listeners closed")
                return 0
            }
            var fds = [pollfd(fd: signalFd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: controlFd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: notify?.fd ?? -1, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wakePipe[0], events: Int16(POLLIN), revents: 0)]
            let clientFds = Array(clients.keys)
            fds += clientFds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let n = poll(&fds, nfds_t(fds.count), nextTimeout())
            if n < 0 && errno != EINTR { log("poll: \(String(cString: strerror(errno)))") }
            if fds[0].revents != 0 { handleSignals() }
            if fds[2].revents != 0, let notify {
                for m in notify.receiveAll() { handleNotify(m) }
            }
            if fds[3].revents != 0 {
                var b = [UInt8](repeating: 0, count: 64)
                while read(wakePipe[0], &b, 64) > 0 {}
                collectReadiness()
            }
            if fds[1].revents != 0 { acceptClients() }
            for (i, fd) in clientFds.enumerated() where fds[4 + i].revents != 0 { readClient(fd) }
            checkTimers()
        }
    }

    func handleSignals() {
        var b = [UInt8](repeating: 0, count: 64)
        var got = Set<Int32>()
        while true {
            let n = read(signalFd, &b, 64)
            if n <= 0 { break }
            for i in 0..<n { got.insert(Int32(b[i])) }
        }
        if got.contains(SIGCHLD) { reap() }
        if got.contains(SIGHUP) { log("SIGHUP: upgrading"); beginUpgrade(client: nil) }
        if got.contains(SIGTERM) || got.contains(SIGINT) {
            if !shuttingDown { log("stopping: signalling every generation") }
            shuttingDown = true
            restartAt = nil
            for gen in generations { stopGeneration(gen) }
        }
    }

    func handleNotify(_ m: NotifyReceiver.Message) {
        let mainPid = m.fields["MAINPID"].flatMap { Int32($0) }
        guard let gen = generations.first(where: { $0.pid == m.senderPid || $0.pid == mainPid }) else {
            m.fds.forEach { close($0) }
            return
        }
        if m.fields["FDSTOREREMOVE"] == "1", let name = m.fields["FDNAME"] {
            let gone = stored.filter { $0.name == name }
            gone.forEach { close($0.fd) }
            stored.removeAll { $0.name == name }
            log("generation \(gen.id) (pid \(gen.pid)): FDSTOREREMOVE \(name): \(gone.count) fd(s) closed")
        }
        if m.fields["FDSTORE"] == "1" { store(m.fds, name: m.fields["FDNAME"] ?? "stored", from: gen) }
        else { m.fds.forEach { close($0) } }
        if m.fields["READY"] == "1", config.ready == .notify { markReady(gen) }
        if m.fields["STOPPING"] == "1" { log("generation \(gen.id) (pid \(gen.pid)): STOPPING=1") }
    }

    /// Keep deposited fds (up to --fd-store-max; one already held — same file — is not kept twice).
    func store(_ fds: [Int32], name: String, from gen: Generation) {
        func identity(_ fd: Int32) -> (UInt, UInt)? {
            var st = stat()
            return fstat(fd, &st) == 0 ? (UInt(st.st_dev), UInt(st.st_ino)) : nil
        }
        let valid = name.utf8.count <= 255 && !name.isEmpty && name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: ":") }
        for fd in fds {
            let id = identity(fd)
            if !valid {
                close(fd)
                log("generation \(gen.id) (pid \(gen.pid)): FDSTORE refused: FDNAME '\(name)' is not 1 to 255 printable characters without ':'")
            } else if let id, stored.contains(where: { identity($0.fd).map { $0 == id } ?? false }) {
                close(fd)
            } else if stored.count >= config.fdStoreMax {
                close(fd)
                log("generation \(gen.id) (pid \(gen.pid)): FDSTORE refused: the fd store is full (--fd-store-max \(config.fdStoreMax))")
            } else {
                stored.append((name, fd))
                log("generation \(gen.id) (pid \(gen.pid)): FDSTORE \(name): holding fd \(fd) for later generations")
            }
        }
    }

    func acceptClients() {
        while true {
            let fd = sockctl_accept4(controlFd, Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue))
            if fd < 0 { break }
            clients[fd] = []
        }
    }

    func readClient(_ fd: Int32) {
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = read(fd, &buf, buf.count)
        if n <= 0 {
            if n < 0 && errno == EAGAIN { return }
            close(fd); clients[fd] = nil
            upgrade?.clients.removeAll { $0 == fd }
            return
        }
        clients[fd, default: []] += buf[0..<n]
        guard let nl = clients[fd]!.firstIndex(of: 0x0a) else {
            if clients[fd]!.count > 65536 { close(fd); clients[fd] = nil }
            return
        }
        let line = Data(clients[fd]![..<nl])
        clients[fd] = nil  // no longer polled; the fd is owned by the request now
        guard let req = try? JSONDecoder().decode(ControlProtocol.Request.self, from: line) else {
            reply(fd, ControlProtocol.Reply(ok: false, message: "bad request: expected {\"command\":\"upgrade\"|\"status\"}"))
            return
        }
        switch req.command {
        case "upgrade": beginUpgrade(client: fd)
        case "status": reply(fd, ControlProtocol.Reply(ok: true, message: "ok", status: status()))
        default: reply(fd, ControlProtocol.Reply(ok: false, message: "unknown command '\(req.command)' (known: upgrade, status)"))
        }
    }

    func reply(_ fd: Int32?, _ r: ControlProtocol.Reply) {
        guard let fd else { return }
        if var data = try? JSONEncoder().encode(r) {
            data.append(0x0a)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
            data.withUnsafeBytes { raw in
                var off = 0
                while off < raw.count {
                    let n = write(fd, raw.baseAddress! + off, raw.count - off)
                    if n <= 0 { break }
                    off += n
                }
            }
        }
        close(fd)
    }

    public func status() -> SupervisorStatus {
        let now = env.now()
        return SupervisorStatus(
            name: config.name, pid: getpid(), command: config.command, ready: config.ready.description,
            listeners: listeners.map { .init(name: $0.name, fd: $0.fd, url: $0.spec?.url ?? "inherited", inherited: $0.inherited) },
            generations: generations.map { .init(generation: $0.id, pid: $0.pid, state: $0.state.rawValue, uptimeMs: ms(now - $0.startedAt)) },
            upgradeInProgress: upgrade != nil, upgrades: upgrades, failedUpgrades: failedUpgrades, restarts: restarts,
            lastUpgrade: lastUpgrade, storedFds: stored.map(\.name))
    }
}

func ms(_ seconds: Double) -> Int { Int((seconds * 1000).rounded()) }

func describeExit(_ status: Int32) -> String {
    let sig = status & 0x7f
    if sig == 0 { return "exited with status \((status >> 8) & 0xff)" }
    return "was killed by signal \(sig) (\(String(cString: strsignal(sig))))"
}

/// `net.ipv4.tcp_migrate_req` in the current network namespace.
public enum MigrateReq {
    public static let path = "/proc/sys/net/ipv4/tcp_migrate_req"

    public static func read(path: String = path) -> Int? {
        guard let s = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return Int(s.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Check and set it to 1; errors say how to fix them (no such sysctl or no right to write it: exit 3).
    public static func enable(path: String = path) throws {
        guard let current = read(path: path) else {
            throw HandoffError.unsupported("--migrate: \(path) does not exist: this kernel has no tcp_migrate_req (Linux 5.14+ needed)")
        }
        if current == 1 { return }
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw HandoffError.sys("open", path + " for writing (--migrate)") }
        defer { close(fd) }
        let one = Array("1\n".utf8)
        guard write(fd, one, one.count) == one.count else { throw HandoffError.sys("write", path + " (--migrate)") }
    }
}
