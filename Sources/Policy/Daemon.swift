import Foundation
import Handoff
import Kill
import Hummingbird
import Logging
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

/// The watcher part of the daemon as a service: starts the route monitors, runs interval rules,
/// notices namespaces created or deleted (inotify on /run/netns plus a periodic full rescan), and
/// stops everything on graceful shutdown.
struct EngineService: Service {
    let engine: PolicyEngine

    func run() async throws {
        if engine.options.preloadBPF {
            // Off the start path (loading both copies takes ~100 ms of CPU); until it is done, kills use netlink.
            let logger = engine.logger
            Foundation.Thread.detachNewThread {
                if let why = SocketKiller.preloadBPF() {
                    // Without the first copy kills use netlink; without the second, one BPF pass.
                    logger.info("BPF destroy programs not (all) loaded", metadata: ["reason": "\(why)"])
                } else {
                    logger.info("BPF destroy programs loaded: kills in one namespace use them")
                }
            }
        }
        engine.rescan()
        engine.restartIntervals()
        let watcher = NetnsDirectoryWatcher(directory: engine.options.netnsDirectory, period: engine.options.rescanInterval) {
            engine.rescan()
        }
        watcher.start()
        // Wait for shutdown (graceful or cancellation) without busy work.
        await withGracefulShutdownHandler {
            var ticks = 0
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                try? await Task.sleep(nanoseconds: 100_000_000)
                ticks += 1
                // A comment line every 10 s on /v1/events finds clients that went away.
                if ticks % 100 == 0 { engine.hub.heartbeat() }
            }
        } onGracefulShutdown: {
            _ = try? ServiceNotify.stopping()
        }
        watcher.stop()
        engine.stopAll()
        // Every kill done so far is reported before the streams end and the process exits.
        engine.reporter.drain()
        engine.hub.finishAll()
    }
}

/// inotify on the `ip netns` directory (names added or removed) plus a periodic rescan, on its own
/// thread; `changed` runs on that thread.
final class NetnsDirectoryWatcher: @unchecked Sendable {
    let directory: String
    let period: Double
    let changed: @Sendable () -> Void
    private let lock = NSLock()
    private var stopped = false

    init(directory: String, period: Double, changed: @escaping @Sendable () -> Void) {
        self.directory = directory
        self.period = period
        self.changed = changed
    }

    func start() {
        let t = Foundation.Thread { [self] in loop() }
        t.name = "sockctl-netns-watch"
        t.start()
    }

    func stop() { lock.withLock { stopped = true } }
    private var isStopped: Bool { lock.withLock { stopped } }

    private func loop() {
        _ = mkdir(directory, 0o755)
        let fd = inotify_init1(Int32(IN_CLOEXEC) | Int32(IN_NONBLOCK))
        if fd >= 0 {
            _ = inotify_add_watch(fd, directory, UInt32(IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_ATTRIB))
        }
        defer { if fd >= 0 { close(fd) } }
        var last = Date()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !isStopped {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let rc = fd >= 0 ? poll(&pfd, 1, 200) : { usleep(200_000); return 0 }()
            var due = Date().timeIntervalSince(last) >= period
            if rc > 0 {
                while read(fd, &buffer, buffer.count) > 0 {}
                // `ip netns add` creates the file, then bind-mounts the namespace on it: let it finish.
                usleep(20_000)
                due = true
            }
            if due && !isStopped {
                changed()
                last = Date()
            }
        }
    }
}

/// Everything `sockctl daemon` needs to run.
public struct DaemonConfiguration: Sendable {
    public var engine: PolicyEngine.Options
    public var endpoint: APIEndpoint
    public init(engine: PolicyEngine.Options, endpoint: APIEndpoint) {
        self.engine = engine
        self.endpoint = endpoint
    }
}

public enum Daemon {
    /// Runs until SIGTERM/SIGINT. The policy must load (a bad file throws `PolicyError` before
    /// anything starts); SIGHUP and `POST /v1/reload` load it again, keeping the old one on error.
    public static func run(_ config: DaemonConfiguration, killer: SocketKilling? = nil, logger: Logger) async throws {
        let metrics = DaemonMetrics()
        let out = StdoutLines()
        let engine = try PolicyEngine(options: config.engine, killer: killer ?? defaultKiller(), metrics: metrics, logger: logger,
                                      output: { out.write($0) })
        let router = ControlAPI.router(engine: engine, endpoint: config.endpoint)
        let address: BindAddress
        let unixPath: String?
        switch config.endpoint {
        case .unix(let path):
            // A stale socket from an earlier run would make bind fail; anything else is left alone.
            var st = stat()
            if lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK { unlink(path) }
            address = .unixDomainSocket(path: path)
            unixPath = path
        case .tcp(let host, let port, _):
            address = .hostname(host, port: port)
            unixPath = nil
        }
        // Created 0600 from the start (no window in which others could connect), then checked.
        let oldMask = umask(0o177)
        let app = Application(
            router: router,
            configuration: .init(address: address, serverName: "sockctl"),
            onServerRunning: { _ in
                umask(oldMask)
                if let unixPath { chmod(unixPath, 0o600) }
                logger.info("control API listening", metadata: ["api": "\(config.endpoint.logDescription)"])
                if (try? ServiceNotify.ready(status: "watching \(engine.policy.rules.count) rules")) == true {
                    logger.info("sent READY=1 to NOTIFY_SOCKET")
                }
            },
            logger: logger
        )
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        signal(SIGHUP, SIG_IGN)
        hup.setEventHandler {
            logger.info("SIGHUP: reloading policy")
            engine.reload()
        }
        hup.resume()
        let group = ServiceGroup(
            configuration: .init(
                // Shut down in reverse order: the engine first (it also ends /v1/events streams, which
                // the HTTP server's graceful shutdown waits for), then the server.
                services: [.init(service: app), .init(service: EngineService(engine: engine))],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
        hup.cancel()
        if let unixPath { unlink(unixPath) }
        logger.info("stopped")
    }

    /// The kill engine the daemon uses unless one is given.
    static func defaultKiller() -> SocketKilling { SocketKillerAdapter() }
}

extension APIEndpoint {
    var logDescription: String {
        switch self {
        case .unix(let p): return "unix://\(p)"
        case .tcp(let h, let p, _): return "tcp://\(h):\(p) (bearer token)"
        }
    }
}

/// Whole lines to stdout, never interleaved between threads.
final class StdoutLines: @unchecked Sendable {
    private let lock = NSLock()
    func write(_ s: String) {
        lock.withLock {
            var bytes = Array(s.utf8)
            var off = 0
            while off < bytes.count {
                let n = bytes.withUnsafeMutableBytes { Glibc.write(1, $0.baseAddress! + off, $0.count - off) }
                if n <= 0 { if errno == EINTR { continue }; return }
                off += n
            }
        }
    }
}
