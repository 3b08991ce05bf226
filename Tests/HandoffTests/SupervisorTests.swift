import Foundation
import Testing
import Handoff
#if canImport(Glibc)
import Glibc
#endif

/// A `sockctl run` supervisor of the example server, inside its own namespace.
final class Supervised {
    let ns: TestNamespace
    let name: String
    let control: String
    let behavior: String
    let process: Process
    let port = 8080

    init(_ tag: String, extra: [String] = [], readyTimeout: String = "3s", drainTimeout: String = "2s",
         ownListener: Bool = false, serverArgs: [String] = []) throws {
        ns = try TestNamespace(tag)
        name = ns.name
        control = "/run/sockctl/\(name).sock"
        behavior = "/tmp/\(name).behavior"
        try "ok".write(toFile: behavior, atomically: true, encoding: .utf8)
        let listen = ownListener ? [] : ["--listen", "tcp://127.0.0.1:\(port)?backlog=4096"]
        process = try ns.spawn([sockctlBin, "run", "--name", name] + listen +
                               ["--ready", "notify", "--ready-timeout", readyTimeout, "--drain-timeout", drainTimeout] + extra +
                               ["--", serverBin, "--behavior-file", behavior] + serverArgs, log: "/tmp/\(name).log")
        guard waitFor(10, { FileManager.default.fileExists(atPath: control) && ((try? status())?.contains("active") ?? false) }) else {
            throw TestFailure("supervisor did not start: \((try? String(contentsOfFile: "/tmp/\(name).log", encoding: .utf8)) ?? "")")
        }
    }

    func status() throws -> String { try ns.run([sockctlBin, "status", name, "--json"]).out }
    func decodedStatus() throws -> SupervisorStatus { try JSONDecoder().decode(SupervisorStatus.self, from: Data(try status().utf8)) }
    func activePid() -> Int32? { (try? decodedStatus())?.generations.first { $0.state == "active" }?.pid }
    func upgrade() throws -> (status: Int32, out: String, err: String) { try ns.run([sockctlBin, "upgrade", name]) }

    func stop() {
        kill(process.processIdentifier, SIGTERM)
        _ = waitFor(5) { !process.isRunning }
        ns.delete()
        unlink(behavior)
    }
}

struct TestFailure: Error, CustomStringConvertible { var description: String; init(_ s: String) { description = s } }

@Suite(.serialized) struct SupervisorUnderLoadTests {
    /// 20 upgrades under load: 0 failed connections and requests; a naive restart in the same run fails some.
    @Test func twentyUpgradesUnderLoadDropNothingWhileNaiveRestartsDrop() throws {
        let sup = try Supervised("load")
        defer { sup.stop() }
        let load = try Load(in: sup.ns, port: sup.port)
        var pids = Set<String>()
        for _ in 0..<20 {
            let r = try sup.upgrade()
            #expect(r.status == 0, "\(r.out) \(r.err)")
            pids.insert(r.out)
            usleep(50_000)
        }
        let handoff = try load.stop()

        // Naive restart: the server opens its own listener; stop the old, start the new.
        let naiveNs = try TestNamespace("naive")
        defer { naiveNs.delete() }
        var server = try naiveNs.spawn([serverBin, "--listen", "127.0.0.1:8080"])
        #expect(waitFor(5) { ((try? naiveNs.run(["python3", "-c", "import socket; socket.create_connection(('127.0.0.1',8080),1)"]))?.status ?? 1) == 0 })
        let naiveLoad = try Load(in: naiveNs, port: 8080)
        for _ in 0..<5 {
            server.terminate()
            server.waitUntilExit()
            server = try naiveNs.spawn([serverBin, "--listen", "127.0.0.1:8080"])
            usleep(200_000)
        }
        let naive = try naiveLoad.stop()
        server.terminate()

        print("handoff (20 upgrades): \(handoff.connections) connections, \(handoff.requests) requests, failed connections \(handoff.failed_connections), failed requests \(handoff.failed_requests) \(handoff.errors)")
        print("naive restart (5 restarts): \(naive.connections) connections, \(naive.requests) requests, failed connections \(naive.failed_connections), failed requests \(naive.failed_requests) \(naive.errors)")
        #expect(handoff.requests > 200)
        #expect(handoff.failed_connections == 0)
        #expect(handoff.failed_requests == 0)
        #expect(naive.failed_connections + naive.failed_requests > 0)
        #expect(try sup.decodedStatus().upgrades == 20)
    }

    /// A new generation that crashes at start, then one that never says READY=1: `upgrade` fails
    /// with the reason, the old generation keeps serving, no request fails.
    @Test func failedUpgradesKeepTheOldGeneration() throws {
        let sup = try Supervised("fail", readyTimeout: "1s", drainTimeout: "1s")
        defer { sup.stop() }
        let load = try Load(in: sup.ns, port: sup.port)
        let pid1 = sup.activePid()

        try "crash".write(toFile: sup.behavior, atomically: true, encoding: .utf8)
        let crashed = try sup.upgrade()
        #expect(crashed.status == 4)
        #expect(crashed.err.contains("killed by signal 6") && crashed.err.contains("before it was ready") && crashed.err.contains("keeps serving"), "\(crashed.err)")

        try "never-ready".write(toFile: sup.behavior, atomically: true, encoding: .utf8)
        let slow = try sup.upgrade()
        #expect(slow.status == 4)
        #expect(slow.err.contains("not ready within") && slow.err.contains("no READY=1"), "\(slow.err)")

        // A second upgrade while one runs is refused.
        try "never-ready".write(toFile: sup.behavior, atomically: true, encoding: .utf8)
        let first = try sup.ns.spawn([sockctlBin, "upgrade", sup.name])
        usleep(300_000)
        let second = try sup.upgrade()
        #expect(second.status == 4 && second.err.contains("one upgrade at a time"), "\(second.err)")
        first.waitUntilExit()
        #expect(first.terminationStatus == 4)

        usleep(1_200_000)  // let the never-ready generations drain
        let result = try load.stop()
        print("failed upgrades under load: \(result.requests) requests, failed connections \(result.failed_connections), failed requests \(result.failed_requests)")
        #expect(result.failed_connections == 0 && result.failed_requests == 0, "\(result.errors)")
        // Generation 1 is still the one serving.
        #expect(pid1 != nil && sup.activePid() == pid1)
        #expect(try sup.decodedStatus().failedUpgrades == 3)
    }

    /// The child crashes (SIGUSR1: it stops accepting and aborts once idle) under load: clients wait in
    /// the backlog, nothing is reset, and the supervisor restarts it.
    @Test func crashedChildIsRestartedWithoutResets() throws {
        let sup = try Supervised("crash")
        defer { sup.stop() }
        let load = try Load(in: sup.ns, port: sup.port, new: 4, keepalive: 0)
        for _ in 0..<3 {
            let pid = try #require(sup.activePid())
            kill(pid, SIGUSR1)
            #expect(waitFor(5) { sup.activePid().map { $0 != pid } ?? false })
        }
        let result = try load.stop()
        let st = try sup.status()
        print("crash restarts under load: \(result.requests) requests, failed connections \(result.failed_connections), failed requests \(result.failed_requests); \(st)")
        #expect(try sup.decodedStatus().restarts == 3)
        #expect(result.failed_connections == 0 && result.failed_requests == 0, "\(result.errors)")
    }

    /// Servers that open their own SO_REUSEPORT listeners: closing the old generation's listener
    /// (after 200 ms of finishing its work) loses its accept queue without tcp_migrate_req, and
    /// nothing with `--migrate`. Same run, two namespaces.
    @Test func migrateReqKeepsTheClosingListenersQueue() throws {
        func run(migrate: Bool) throws -> LoadResult {
            let sup = try Supervised(migrate ? "mig" : "nomig", extra: migrate ? ["--migrate"] : [], ownListener: true,
                                     serverArgs: ["--listen", "127.0.0.1:8080", "--reuseport", "--linger-close", "200ms"])
            defer { sup.stop() }
            let sysctl = try sup.ns.run(["cat", "/proc/sys/net/ipv4/tcp_migrate_req"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(sysctl == (migrate ? "1" : "0"))
            let load = try Load(in: sup.ns, port: 8080, new: 4, keepalive: 0)
            for _ in 0..<5 {
                let r = try sup.upgrade()
                #expect(r.status == 0, "\(r.err)")
            }
            return try load.stop()
        }
        let with = try run(migrate: true)
        let without = try run(migrate: false)
        print("own SO_REUSEPORT listeners, 5 upgrades: with --migrate \(with.requests) requests, failed connections \(with.failed_connections), failed requests \(with.failed_requests); without: \(without.requests) requests, failed connections \(without.failed_connections), failed requests \(without.failed_requests) \(without.errors)")
        #expect(with.failed_connections + with.failed_requests == 0, "\(with.errors)")
        #expect(without.failed_connections + without.failed_requests > 0)
    }

    /// Bad input: nothing is left running, distinct exit statuses.
    @Test func badInputExitsWithAClearMessage() throws {
        let ns = try TestNamespace("bad")
        defer { ns.delete() }
        let badURL = try ns.runExpectingFailure([sockctlBin, "run", "--name", ns.name, "--listen", "tcp://nowhere:80", "--", serverBin])
        #expect(badURL.status == 2 && badURL.err.contains("bad --listen URL 'tcp://nowhere:80'"), "\(badURL.err)")
        let noCmd = try ns.runExpectingFailure([sockctlBin, "run", "--name", ns.name, "--listen", "tcp://127.0.0.1:80", "--", "/nonexistent/server"])
        #expect(noCmd.status == 2 && noCmd.err.contains("cannot run '/nonexistent/server'"), "\(noCmd.err)")
        let bound = Pipe()
        let holder = try ns.spawn(["python3", "-c", "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',81)); s.listen(); print('bound', flush=True); time.sleep(30)"],
                                  stdout: bound)
        defer { holder.terminate() }
        _ = bound.fileHandleForReading.availableData  // "bound": port 81 is taken
        let inUse = try ns.runExpectingFailure([sockctlBin, "run", "--name", ns.name, "--listen", "tcp://127.0.0.1:81", "--", serverBin])
        #expect(inUse.status == 2 && inUse.err.contains("bind(tcp://127.0.0.1:81) failed: Address already in use") &&
                inUse.err.contains("another socket is bound there"), "\(inUse.err)")
        #expect(!FileManager.default.fileExists(atPath: "/run/sockctl/\(ns.name).sock"))
        let noSup = try ns.run([sockctlBin, "upgrade", ns.name])
        #expect(noSup.status == 2 && noSup.err.contains("no supervisor named"))
    }
}
