import Foundation
import Testing
@testable import Handoff
#if canImport(Glibc)
import Glibc
#endif

/// A fake operating system for the supervisor (its `ProcessEnvironment`): spawns hand out pids and
/// are recorded, signals are recorded, the clock moves only when the test moves it, exits are
/// queued by the test and reaped by the supervisor, readiness probes answer what the test says.
final class FakeProcesses {
    struct Spawn { var path: String; var argv: [String]; var env: [String: String]; var fds: [Int32]; var pid: Int32; var at: Double }

    let lock = NSLock()
    var clock = 1000.0
    var nextPid: Int32 = 100
    var spawns: [Spawn] = []
    var signals: [(pid: Int32, signal: Int32)] = []
    var exits: [(pid: Int32, status: Int32)] = []
    var spawnError: HandoffError?
    var parentEnvironment: [String: String] = ["PATH": "/usr/bin", "HOME": "/root"]
    var probeAnswer = false
    var probes: [(host: String, port: UInt16, path: String?)] = []

    var environment: ProcessEnvironment {
        ProcessEnvironment(
            spawn: { [self] path, argv, env, fds in
                if let spawnError { throw spawnError }
                nextPid += 1
                spawns.append(Spawn(path: path, argv: argv, env: env, fds: fds, pid: nextPid, at: clock))
                return nextPid
            },
            kill: { [self] pid, sig in signals.append((pid, sig)) },
            now: { [self] in lock.lock(); defer { lock.unlock() }; return clock },
            environment: { [self] in parentEnvironment },
            reap: { [self] in exits.isEmpty ? nil : exits.removeFirst() },
            probe: { [self] host, port, path in
                lock.lock(); defer { lock.unlock() }
                probes.append((host, port, path))
                return probeAnswer
            })
    }

    func advance(to t: Double) { lock.lock(); clock = t; lock.unlock() }
    func advance(by d: Double) { lock.lock(); clock += d; lock.unlock() }
    /// The process exits with `code` (as exit(code)) or dies of `signal`.
    func exit(_ pid: Int32, code: Int32 = 0, signal: Int32 = 0) { exits.append((pid, signal != 0 ? signal : code << 8)) }
    func signalsTo(_ pid: Int32) -> [Int32] { signals.filter { $0.pid == pid }.map(\.signal) }
}

/// A supervisor wired to a fake environment, without its sockets: the tests drive its steps
/// (spawn, notify, signals, reaping, timers) the way its poll loop would.
func fakeSupervisor(_ fake: FakeProcesses, ready: Readiness = .notify, configure: (inout SupervisorConfig) -> Void = { _ in }) -> (Supervisor, LogLines) {
    var config = SupervisorConfig(name: "unit", controlPath: "/nonexistent/unit.sock", notifyPath: "/run/sockctl/unit.notify",
                                  listeners: [], command: ["server", "--flag"], executable: "/srv/server")
    config.ready = ready
    config.readyTimeout = 5
    config.drainTimeout = 2
    configure(&config)
    let sup = Supervisor(config: config, environment: fake.environment)
    let lines = LogLines()
    sup.log = { lines.append($0) }
    return (sup, lines)
}

final class LogLines {
    let lock = NSLock()
    var all: [String] = []
    func append(_ s: String) { lock.lock(); all.append(s); lock.unlock() }
    func contains(_ s: String) -> Bool { lock.lock(); defer { lock.unlock() }; return all.contains { $0.contains(s) } }
}

/// A control-socket client: the supervisor writes its reply into one end of a socketpair.
struct FakeClient {
    let mine: Int32, theirs: Int32
    init() {
        var sv: [Int32] = [0, 0]
        precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &sv) == 0)
        mine = sv[0]; theirs = sv[1]
    }
    /// The reply, once the supervisor has answered (it closes its end then); nil while it has not.
    func reply() -> ControlProtocol.Reply? {
        var fds = [pollfd(fd: mine, events: Int16(POLLIN), revents: 0)]
        guard poll(&fds, 1, 0) == 1 else { return nil }
        var data = Data()
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(mine, &buf, buf.count)
            if n <= 0 { break }
            data += buf[0..<n]
        }
        close(mine)
        return try? JSONDecoder().decode(ControlProtocol.Reply.self, from: data)
    }
}

@Suite struct SupervisorUnitTests {
    /// The child's environment and fds follow the systemd protocol: LISTEN_FDS/LISTEN_FDNAMES for
    /// the listeners in order, the listeners' fds (to become 3, 4, ...), our NOTIFY_SOCKET and
    /// generation; the supervisor's own LISTEN_* and NOTIFY_SOCKET are not passed on (LISTEN_PID is
    /// filled in with the child's own pid by the spawn itself: see the namespace tests).
    @Test func spawnPassesTheListenersPerTheSystemdProtocol() throws {
        let fake = FakeProcesses()
        fake.parentEnvironment = ["PATH": "/usr/bin", "LISTEN_FDS": "9", "LISTEN_PID": "1", "LISTEN_FDNAMES": "old",
                                  "NOTIFY_SOCKET": "/run/systemd/notify"]
        let (sup, _) = fakeSupervisor(fake)
        sup.listeners = [Listener(name: "web", fd: 11, spec: try ListenerSpec.parse("tcp://127.0.0.1:80?name=web")),
                         Listener(name: "dns", fd: 7, spec: try ListenerSpec.parse("udp://127.0.0.1:53?name=dns")),
                         Listener(name: "api", fd: 9, spec: try ListenerSpec.parse("unix:///run/api.sock?name=api"))]
        _ = try sup.spawnGeneration()
        let s = try #require(fake.spawns.first)
        #expect(s.path == "/srv/server" && s.argv == ["server", "--flag"])
        #expect(s.fds == [11, 7, 9])
        #expect(s.env == ["PATH": "/usr/bin", "LISTEN_FDS": "3", "LISTEN_FDNAMES": "web:dns:api",
                          "NOTIFY_SOCKET": "/run/sockctl/unit.notify", "SOCKCTL_GENERATION": "1"])
        _ = try sup.spawnGeneration()
        #expect(fake.spawns[1].env["SOCKCTL_GENERATION"] == "2")
    }

    /// A crash-looping child (each dies soon after it starts) is restarted after 0.1, 0.2, 0.4,
    /// 0.8 s, then at the 0.8 s cap; one that lived past backoffResetAfter starts the series again.
    @Test func crashLoopBackoffDoublesUpToTheCapAndResets() throws {
        let fake = FakeProcesses()
        let (sup, log) = fakeSupervisor(fake) { $0.backoffMin = 0.1; $0.backoffMax = 0.8; $0.backoffResetAfter = 10 }
        _ = try sup.spawnGeneration()
        var delays: [Double] = []
        for _ in 0..<6 {
            let current = try #require(fake.spawns.last)
            fake.advance(by: 0.5)  // lived 0.5 s: a crash loop
            fake.exit(current.pid, signal: SIGSEGV)
            sup.reap()
            let crashedAt = fake.clock
            let due = try #require(sup.restartAt)
            // Not a moment before the backoff ends.
            fake.advance(to: due - 0.001)
            sup.checkTimers()
            #expect(fake.spawns.count == delays.count + 1)
            fake.advance(to: due)
            sup.checkTimers()
            #expect(fake.spawns.count == delays.count + 2)
            delays.append(((fake.spawns.last!.at - crashedAt) * 1000).rounded() / 1000)
            sup.handleNotify(.init(senderPid: fake.spawns.last!.pid, fields: ["READY": "1"]))
        }
        #expect(delays == [0.1, 0.2, 0.4, 0.8, 0.8, 0.8])
        #expect(log.contains("restarting in 800 ms"))
        // A generation that served for 11 s, then crashed: back to the first step.
        fake.advance(by: 11)
        fake.exit(fake.spawns.last!.pid, code: 1)
        sup.reap()
        #expect(abs(try #require(sup.restartAt) - fake.clock - 0.1) < 1e-9)
        #expect(sup.status().restarts == 6)
    }

    /// An upgrade: the new generation says READY=1, the old one gets the configured stop signal
    /// (not SIGTERM), is SIGKILLed exactly when --drain-timeout ends, and the client hears of it.
    @Test func upgradeSignalsTheOldGenerationThenKillsItAfterTheDrainTimeout() throws {
        let fake = FakeProcesses()
        let (sup, _) = fakeSupervisor(fake) { $0.stopSignal = SIGUSR2; $0.drainTimeout = 2 }
        let gen1 = try sup.spawnGeneration()
        sup.handleNotify(.init(senderPid: gen1.pid, fields: ["READY": "1"]))
        #expect(gen1.state == .active)
        let client = FakeClient()
        sup.beginUpgrade(client: client.theirs)
        let gen2 = try #require(fake.spawns.last)
        #expect(gen2.pid != gen1.pid)
        // READY=1 from a process that is not the new generation changes nothing.
        sup.handleNotify(.init(senderPid: 4242, fields: ["READY": "1"]))
        #expect(fake.signals.isEmpty && client.reply() == nil)
        // MAINPID= naming the new generation counts (sent by a helper of the child).
        sup.handleNotify(.init(senderPid: 4242, fields: ["READY": "1", "MAINPID": String(gen2.pid)]))
        #expect(fake.signalsTo(gen1.pid) == [SIGUSR2])
        #expect(fake.signalsTo(gen2.pid).isEmpty)
        let signaled = try #require(gen1.signaledAt)
        fake.advance(to: signaled + 1.999)
        sup.checkTimers()
        #expect(fake.signalsTo(gen1.pid) == [SIGUSR2])
        #expect(client.reply() == nil)  // still waiting for the old generation to go
        fake.advance(to: signaled + 2)
        sup.checkTimers()
        #expect(fake.signalsTo(gen1.pid) == [SIGUSR2, SIGKILL])
        fake.exit(gen1.pid, signal: SIGKILL)
        sup.reap()
        let reply = try #require(client.reply())
        #expect(reply.ok, "\(reply.message)")
        #expect(reply.upgrade?.generation == 2 && reply.upgrade?.pid == gen2.pid)
        #expect(reply.upgrade?.oldPids == [gen1.pid] && reply.upgrade?.killedPids == [gen1.pid])
        #expect(reply.upgrade?.drainMs == 2000)
        #expect(sup.status().generations.map(\.pid) == [gen2.pid] && sup.restartAt == nil)
    }

    /// New generations that exit, crash, never get ready, or cannot be started: each upgrade fails
    /// with the reason, the old generation is never signalled, and a second request while one runs
    /// is refused.
    @Test func failedUpgradesLeaveTheOldGenerationServing() throws {
        let fake = FakeProcesses()
        let (sup, _) = fakeSupervisor(fake) { $0.readyTimeout = 5 }
        let gen1 = try sup.spawnGeneration()
        sup.handleNotify(.init(senderPid: gen1.pid, fields: ["READY": "1"]))

        let exits = FakeClient()
        sup.beginUpgrade(client: exits.theirs)
        fake.exit(fake.spawns.last!.pid, code: 3)
        sup.reap()
        let r1 = try #require(exits.reply())
        #expect(!r1.ok && r1.message.contains("exited with status 3 before it was ready"), "\(r1.message)")
        #expect(r1.message.contains("generation 1 (pid \(gen1.pid)) keeps serving"))

        let crashes = FakeClient()
        sup.beginUpgrade(client: crashes.theirs)
        fake.exit(fake.spawns.last!.pid, signal: SIGABRT)
        sup.reap()
        let r2 = try #require(crashes.reply())
        #expect(!r2.ok && r2.message.contains("killed by signal \(SIGABRT)"), "\(r2.message)")

        let slow = FakeClient()
        sup.beginUpgrade(client: slow.theirs)
        let gen4 = try #require(fake.spawns.last)
        let second = FakeClient()
        sup.beginUpgrade(client: second.theirs)
        let r3 = try #require(second.reply())
        #expect(!r3.ok && r3.message.contains("one upgrade at a time"), "\(r3.message)")
        #expect(fake.spawns.count == 4)  // the refused request started nothing
        fake.advance(to: gen4.at + 4.999)
        sup.checkTimers()
        #expect(slow.reply() == nil)
        fake.advance(to: gen4.at + 5)
        sup.checkTimers()
        let r4 = try #require(slow.reply())
        #expect(!r4.ok && r4.message.contains("not ready within 5s") && r4.message.contains("no READY=1"), "\(r4.message)")
        #expect(fake.signalsTo(gen4.pid) == [SIGTERM])

        fake.spawnError = .commandNotFound("/srv/server", reason: "execve: No such file or directory")
        let missing = FakeClient()
        sup.beginUpgrade(client: missing.theirs)
        let r5 = try #require(missing.reply())
        #expect(!r5.ok && r5.message.contains("cannot start the new generation") && r5.message.contains("No such file"), "\(r5.message)")

        #expect(fake.signalsTo(gen1.pid).isEmpty)
        #expect(gen1.state == .active)
        #expect(sup.status().failedUpgrades == 4 && sup.restartAt == nil)
    }

    /// SIGHUP starts an upgrade like `sockctl upgrade`; a second SIGHUP during it is ignored;
    /// SIGTERM stops every generation and nothing is restarted after they exit.
    @Test func signalsUpgradeAndStop() throws {
        let fake = FakeProcesses()
        let (sup, log) = fakeSupervisor(fake)
        var p: [Int32] = [0, 0]
        #expect(pipe(&p) == 0)
        defer { close(p[0]); close(p[1]) }
        #expect(fcntl(p[0], F_SETFL, O_NONBLOCK) == 0)
        sup.signalFd = p[0]
        func deliver(_ sig: Int32) { var b = UInt8(sig); _ = write(p[1], &b, 1); sup.handleSignals() }
        let gen1 = try sup.spawnGeneration()
        sup.handleNotify(.init(senderPid: gen1.pid, fields: ["READY": "1"]))
        deliver(SIGHUP)
        #expect(fake.spawns.count == 2 && sup.upgrade?.newGeneration == 2)
        deliver(SIGHUP)
        #expect(fake.spawns.count == 2 && log.contains("SIGHUP ignored"))
        sup.handleNotify(.init(senderPid: fake.spawns[1].pid, fields: ["READY": "1"]))
        #expect(fake.signalsTo(gen1.pid) == [SIGTERM])
        fake.exit(gen1.pid)
        sup.reap()
        #expect(sup.upgrade == nil && sup.status().upgrades == 1 && sup.lastUpgrade?.contains("generation 2 is serving") == true)
        deliver(SIGTERM)
        #expect(fake.signalsTo(fake.spawns[1].pid) == [SIGTERM])
        fake.exit(fake.spawns[1].pid)
        sup.reap()
        fake.advance(by: 60)
        sup.checkTimers()
        #expect(fake.spawns.count == 2 && sup.restartAt == nil && sup.generations.isEmpty)
    }

    /// delay:2s: ready exactly when the delay ends, not before.
    @Test func delayReadiness() throws {
        let fake = FakeProcesses()
        let (sup, _) = fakeSupervisor(fake, ready: .delay(2))
        let gen = try sup.spawnGeneration()
        fake.advance(to: gen.startedAt + 1.999)
        sup.checkTimers()
        #expect(gen.state == .starting)
        fake.advance(to: gen.startedAt + 2)
        sup.checkTimers()
        #expect(gen.state == .active)
    }

    /// http readiness: the probe goes to the URL with {generation} filled in, the generation is
    /// not ready while the probe fails, and is once it passes; it stops probing afterwards.
    @Test func httpReadinessProbesTheGenerationsURL() throws {
        let fake = FakeProcesses()
        let ready = try Readiness.parse("http://127.0.0.1:8080/ready?generation={generation}")
        let (sup, _) = fakeSupervisor(fake, ready: ready)
        let gen = try sup.spawnGeneration()
        #expect(waitFor(3) { fake.lock.lock(); defer { fake.lock.unlock() }; return fake.probes.count >= 2 })
        sup.collectReadiness()
        #expect(gen.state == .starting)
        fake.lock.lock(); fake.probeAnswer = true; fake.lock.unlock()
        #expect(waitFor(3) { sup.collectReadiness(); return gen.state == .active })
        fake.lock.lock()
        let probe = fake.probes.last!
        let count = fake.probes.count
        fake.lock.unlock()
        #expect(probe.host == "127.0.0.1" && probe.port == 8080 && probe.path == "/ready?generation=1")
        usleep(300_000)
        fake.lock.lock(); #expect(fake.probes.count == count); fake.lock.unlock()
    }

    /// tcp readiness that never passes: at --ready-timeout the new generation is stopped and the
    /// reason names the check; the probes went to the generation's own address.
    @Test func tcpReadinessTimeoutFailsTheUpgrade() throws {
        let fake = FakeProcesses()
        let (sup, _) = fakeSupervisor(fake, ready: try Readiness.parse("tcp://127.0.0.{generation}:9000")) { $0.readyTimeout = 1 }
        let gen1 = try sup.spawnGeneration()
        fake.lock.lock(); fake.probeAnswer = true; fake.lock.unlock()
        #expect(waitFor(3) { sup.collectReadiness(); return gen1.state == .active })
        fake.lock.lock(); fake.probeAnswer = false; fake.lock.unlock()
        let client = FakeClient()
        sup.beginUpgrade(client: client.theirs)
        #expect(waitFor(3) { fake.lock.lock(); defer { fake.lock.unlock() }; return fake.probes.contains { $0.host == "127.0.0.2" } })
        fake.advance(by: 1)
        sup.checkTimers()
        let reply = try #require(client.reply())
        #expect(!reply.ok && reply.message.contains("the tcp://127.0.0.{generation}:9000 check did not pass"), "\(reply.message)")
        #expect(fake.signalsTo(fake.spawns[1].pid) == [SIGTERM] && fake.signalsTo(gen1.pid).isEmpty)
        fake.lock.lock(); #expect(fake.probes.allSatisfy { $0.port == 9000 && $0.path == nil }); fake.lock.unlock()
    }

    /// FDSTORE=1: deposited fds are held (up to fdStoreMax, one file once) and passed to later
    /// generations after the listeners under their FDNAME; FDSTOREREMOVE=1 drops them; fds sent
    /// without FDSTORE=1, by an unknown process, or beyond the limit are closed at once.
    @Test func fdStoreHoldsDepositedFdsForLaterGenerations() throws {
        /// A socketpair: `deposit` goes to the supervisor, `peer` tells whether it was closed.
        func pair() -> (deposit: Int32, peer: Int32) {
            var sv: [Int32] = [0, 0]
            precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sv) == 0)
            return (sv[0], sv[1])
        }
        func closedByTheSupervisor(_ peer: Int32) -> Bool { send(peer, "x", 1, Int32(MSG_NOSIGNAL)) == -1 && errno == EPIPE }
        let fake = FakeProcesses()
        let (sup, _) = fakeSupervisor(fake) { $0.fdStoreMax = 2 }
        sup.listeners = [Listener(name: "web", fd: 11, spec: try ListenerSpec.parse("tcp://127.0.0.1:80?name=web"))]
        let gen1 = try sup.spawnGeneration()
        let state = pair(), other = pair(), extra = pair(), plain = pair(), stranger = pair()
        // Only what the supervisor was not given is ours to close (a second close could hit an fd
        // another test has opened since).
        defer {
            close(state.deposit)
            [state, other, extra, plain, stranger].forEach { close($0.peer) }
            sup.stored.forEach { close($0.fd) }
        }
        sup.handleNotify(.init(senderPid: gen1.pid, fields: ["FDSTORE": "1", "FDNAME": "state"], fds: [dup(state.deposit)]))
        sup.handleNotify(.init(senderPid: gen1.pid, fields: ["FDSTORE": "1", "FDNAME": "state"], fds: [dup(state.deposit)]))
        #expect(sup.stored.map(\.name) == ["state"])  // the same file deposited twice is held once
        sup.handleNotify(.init(senderPid: gen1.pid, fields: ["READY": "1"], fds: [plain.deposit]))
        #expect(closedByTheSupervisor(plain.peer) && gen1.state == .active)
        sup.handleNotify(.init(senderPid: 4242, fields: ["FDSTORE": "1"], fds: [stranger.deposit]))
        #expect(closedByTheSupervisor(stranger.peer))
        sup.handleNotify(.init(senderPid: gen1.pid, fields: ["FDSTORE": "1", "FDNAME": "other"], fds: [other.deposit, extra.deposit]))
        #expect(closedByTheSupervisor(extra.peer) && !closedByTheSupervisor(other.peer))

        sup.beginUpgrade(client: nil)
        let gen2 = try #require(fake.spawns.last)
        #expect(gen2.fds.count == 3 && gen2.fds[0] == 11 && gen2.fds[2] == other.deposit)
        #expect(gen2.env["LISTEN_FDS"] == "3" && gen2.env["LISTEN_FDNAMES"] == "web:state:other")
        #expect(sup.status().storedFds == ["state", "other"])

        sup.handleNotify(.init(senderPid: gen2.pid, fields: ["FDSTOREREMOVE": "1", "FDNAME": "other"]))
        #expect(closedByTheSupervisor(other.peer))
        #expect(sup.status().storedFds == ["state"])

        // Off by default, as in systemd (FileDescriptorStoreMax=0).
        let (off, _) = fakeSupervisor(FakeProcesses())
        let offGen = try off.spawnGeneration()
        let refused = pair()
        defer { close(refused.peer) }
        off.handleNotify(.init(senderPid: offGen.pid, fields: ["FDSTORE": "1", "FDNAME": "state"], fds: [refused.deposit]))
        #expect(closedByTheSupervisor(refused.peer) && off.stored.isEmpty)
    }

    /// ServiceNotify → NotifyReceiver over a real unix datagram socket (a path in /tmp): the fields,
    /// the sender's pid from SCM_CREDENTIALS, and an fd deposited with FDSTORE=1.
    @Test func serviceNotifyReachesTheReceiver() throws {
        let path = "/tmp/sockctl-unit-notify-\(getpid()).sock"
        let receiver = try NotifyReceiver(path: path)
        #expect(try ServiceNotify.ready(status: "warm", socket: path))
        #expect(try ServiceNotify.stopping(socket: path))
        var p: [Int32] = [0, 0]
        #expect(pipe(&p) == 0)
        defer { close(p[0]); close(p[1]) }
        #expect(try ServiceNotify.store([p[1]], name: "state", socket: path))
        #expect(try ServiceNotify.send("READY=1", socket: nil) == false)  // not supervised: nothing sent
        let messages = receiver.receiveAll()
        #expect(messages.count == 3 && messages.allSatisfy { $0.senderPid == getpid() })
        #expect(messages.first?.fields == ["READY": "1", "MAINPID": String(getpid()), "STATUS": "warm"])
        #expect(messages.dropFirst().first?.fields == ["STOPPING": "1"])
        let stored = try #require(messages.last)
        #expect(stored.fields == ["FDSTORE": "1", "FDNAME": "state"] && stored.fds.count == 1)
        // The received fd is the pipe's write end: what it writes comes out of p[0].
        #expect(write(stored.fds[0], "s", 1) == 1)
        var b: UInt8 = 0
        #expect(read(p[0], &b, 1) == 1 && b == UInt8(ascii: "s"))
        stored.fds.forEach { close($0) }
    }

    /// --migrate on a kernel without the sysctl: "kernel support missing", exit 3.
    @Test func migrateWithoutTheSysctlIsExitThree() {
        do {
            try MigrateReq.enable(path: "/proc/sys/net/ipv4/no_such_sysctl_here")
            Issue.record("enabled a sysctl that does not exist")
        } catch let e as HandoffError {
            #expect(e.exitStatus == 3 && e.description.contains("Linux 5.14+"), "\(e)")
        } catch { Issue.record("\(error)") }
    }

    @Test func readinessPlaceholders() throws {
        let t = try Readiness.parse("tcp://127.0.0.{generation}:9000")
        #expect(t.target(generation: 7, firstTCP: nil)! == ("127.0.0.7", 9000, nil))
        let h = try Readiness.parse("http://[::1]:81/ok?g={generation}")
        #expect(h.target(generation: 3, firstTCP: nil)! == ("::1", 81, "/ok?g=3"))
        #expect(Readiness.tcp(host: nil, port: nil).target(generation: 1, firstTCP: ("0.0.0.0", 80))! == ("0.0.0.0", 80, nil))
        #expect(Readiness.tcp(host: nil, port: nil).target(generation: 1, firstTCP: nil) == nil)
        #expect(throws: HandoffError.self) { try Readiness.parse("tcp://127.0.0.1:90{generation}") }
        #expect(throws: HandoffError.self) { try Readiness.parse("http://localhost:80/") }
    }
}
