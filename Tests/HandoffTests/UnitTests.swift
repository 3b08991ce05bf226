import Foundation
import Testing
@testable import Handoff
#if canImport(Glibc)
import Glibc
#endif

@Suite struct ListenerSpecTests {
    @Test func parsesTheForms() throws {
        let t = try ListenerSpec.parse("tcp://127.0.0.1:8080?reuseport=1&backlog=128&name=web")
        #expect(t.kind == .tcp && t.address == "127.0.0.1" && t.port == 8080 && t.reusePort && t.backlog == 128 && t.name == "web")
        let any = try ListenerSpec.parse("tcp://:9000")
        #expect(any.address == "0.0.0.0" && any.name == "tcp-9000")
        let v6 = try ListenerSpec.parse("udp://[::1]:53")
        #expect(v6.kind == .udp && v6.address == "::1" && v6.isIPv6)
        let u = try ListenerSpec.parse("unix:///run/app/api.sock?mode=0660")
        #expect(u.kind == .unix && u.address == "/run/app/api.sock" && u.name == "unix-api.sock" && u.mode == 0o660)
    }

    @Test(arguments: [
        ("http://1.2.3.4:80", "unknown scheme"),
        ("tcp://1.2.3.4", "missing ':PORT'"),
        ("tcp://1.2.3.4:99999", "port '99999'"),
        ("tcp://localhost:80", "not a numeric IPv4"),
        ("tcp://::1:80", "brackets"),
        ("tcp://[::1:80", "without ']'"),
        ("tcp://1.2.3.4:80?backlog=0", "backlog='0'"),
        ("tcp://1.2.3.4:80?frobnicate=1", "unknown option 'frobnicate'"),
        ("tcp://1.2.3.4:80?name=a:b", "no ':'"),
        ("unix://relative.sock", "must be absolute"),
        ("tcp//1.2.3.4:80", "missing scheme"),
    ])
    func rejectsWithTheReason(url: String, reason: String) {
        do {
            _ = try ListenerSpec.parse(url)
            Issue.record("\(url) parsed")
        } catch let error as HandoffError {
            #expect(error.description.contains(reason), "\(error)")
            #expect(error.description.contains(url))
            #expect(error.exitStatus == 2)
        } catch { Issue.record("\(error)") }
    }

    @Test func duplicateNamesAreRefused() {
        #expect(throws: HandoffError.self) { try ListenerSpec.parseAll(["tcp://:80", "tcp://127.0.0.1:80"]) }
    }
}

@Suite struct ListenFDsTests {
    @Test func parsesNamesForOurPid() throws {
        let fds = try ListenFDs.parse(environment: ["LISTEN_FDS": "3", "LISTEN_PID": "42", "LISTEN_FDNAMES": "web::admin"], pid: 42)
        #expect(fds.map(\.name) == ["web", "unknown", "admin"])
        #expect(fds.map(\.fd) == [3, 4, 5])
    }

    @Test func ignoresFdsMeantForAnotherProcess() throws {
        #expect(try ListenFDs.parse(environment: ["LISTEN_FDS": "1", "LISTEN_PID": "41"], pid: 42).isEmpty)
        #expect(try ListenFDs.parse(environment: [:], pid: 42).isEmpty)
    }

    @Test func rejectsMalformed() {
        #expect(throws: HandoffError.self) { try ListenFDs.parse(environment: ["LISTEN_FDS": "1"], pid: 1) }
        #expect(throws: HandoffError.self) { try ListenFDs.parse(environment: ["LISTEN_FDS": "x", "LISTEN_PID": "1"], pid: 1) }
        #expect(throws: HandoffError.self) { try ListenFDs.parse(environment: ["LISTEN_FDS": "2", "LISTEN_PID": "1", "LISTEN_FDNAMES": "a"], pid: 1) }
    }

    @Test func durationsAndReadiness() throws {
        #expect(try DurationParser.parse("500ms", option: "x") == 0.5)
        #expect(try DurationParser.parse("2m", option: "x") == 120)
        #expect(throws: HandoffError.self) { try DurationParser.parse("soon", option: "--drain-timeout") }
        #expect(try Readiness.parse("delay:2s") == .delay(2))
        #expect(try Readiness.parse("http://127.0.0.1:9000/healthz") == .http(host: "127.0.0.1", port: 9000, path: "/healthz"))
        #expect(throws: HandoffError.self) { try Readiness.parse("carrier-pigeon") }
    }
}

@Suite struct FDHandoffTests {
    /// 600 fds (> SCM_MAX_FD = 253, so three chunks) across a socketpair: names and files survive.
    @Test func roundTripOfManyFdsInChunks() throws {
        var sv: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &sv) == 0)
        defer { close(sv[0]); close(sv[1]) }
        var sent: [FDHandoff.NamedFD] = []
        var pipes: [(Int32, Int32)] = []
        for i in 0..<300 {
            var p: [Int32] = [0, 0]
            #expect(pipe(&p) == 0)
            pipes.append((p[0], p[1]))
            sent.append(.init(name: "r\(i)", fd: p[0]))
            sent.append(.init(name: "w\(i)", fd: p[1]))
        }
        defer { for (r, w) in pipes { close(r); close(w) } }
        var received: [FDHandoff.NamedFD] = []
        let receiver = Thread { received = (try? FDHandoff.receive(on: sv[1])) ?? [] }
        receiver.start()
        try FDHandoff.send(sent, on: sv[0])
        for _ in 0..<200 where received.count < sent.count { usleep(10_000) }
        #expect(received.map(\.name) == sent.map(\.name))
        // The received write end of pipe 123 writes into the original read end.
        let w = received.first { $0.name == "w123" }!.fd
        #expect(write(w, "x", 1) == 1)
        var b: UInt8 = 0
        #expect(read(pipes[123].0, &b, 1) == 1 && b == UInt8(ascii: "x"))
        #expect(fcntl(w, F_GETFD) & FD_CLOEXEC != 0)
        received.forEach { close($0.fd) }
    }
}
