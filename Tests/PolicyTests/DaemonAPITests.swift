import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The control API of the real daemon binary: kills on request across namespaces, reloads,
/// authentication and malformed requests.
@Suite struct DaemonAPITests {
    static let requestOnly = """
    rules:
      - name: on-request
        on: request
        match: 'dport = :8080'
        netns: all
        action: kill
    """

    @Test func apiKillOfABackendAcrossTenNamespaces() throws {
        let spaces = try (0..<10).map { _ in try TestNamespace("api") }
        var fixtures: [SocketFixture] = []
        for ns in spaces {
            try ns.addAddress("10.244.1.7/32")
            try ns.addAddress("10.244.1.8/32")
            fixtures.append(try SocketFixture(netns: ns.name, args: ["--to", "10.244.1.7:8080", "--to", "10.244.1.8:8080"]))
        }
        let daemon = try DaemonProcess(policy: Self.requestOnly)
        try daemon.waitReady()
        let names = spaces.map(\.name)
        let netnsJSON = "[" + names.map { "\"\($0)\"" }.joined(separator: ",") + "]"
        let filter = "dst 10.244.1.7 and dport = :8080"

        // More than max: refused, nothing destroyed.
        let refused = daemon.request("POST", "/v1/kill", body: "{\"filter\":\"\(filter)\",\"netns\":\(netnsJSON),\"max\":5}")
        #expect(refused.status == 409, "\(refused)")
        #expect((daemon.json(refused.body)["error"] as? String)?.contains("10 sockets match") == true)
        // Dry run: the same ten, nothing destroyed.
        let dry = daemon.request("POST", "/v1/kill", body: "{\"filter\":\"\(filter)\",\"netns\":\(netnsJSON),\"dryRun\":true}")
        #expect(dry.status == 200)
        #expect(daemon.json(dry.body)["matched"] as? Int == 10)
        for f in fixtures { #expect(try f.probe().values.allSatisfy { $0 == "ok" }) }

        let r = daemon.request("POST", "/v1/kill", body: "{\"filter\":\"\(filter)\",\"netns\":\(netnsJSON)}")
        #expect(r.status == 200, "\(r)")
        let body = daemon.json(r.body)
        let sockets = body["sockets"] as? [[String: Any]] ?? []
        #expect(body["matched"] as? Int == 10 && body["destroyed"] as? Int == 10)
        #expect(Set(sockets.compactMap { $0["netns"] as? String }) == Set(names))
        #expect(sockets.allSatisfy { $0["outcome"] as? String == "destroyed" && $0["dst"] as? String == "10.244.1.7" && $0["dport"] as? Int == 8080 })
        for f in fixtures {
            let p = try f.probe()
            #expect(p["to-10.244.1.7:8080-client"] == "ECONNABORTED", "\(p)")
            #expect(p["to-10.244.1.8:8080-client"] == "ok", "\(p)")
        }
        let samples = try PrometheusText.parse(daemon.request("GET", "/metrics").body)
        let counted = samples.filter { $0.name == "sockctl_sockets_destroyed_total" && $0.labels["rule"] == "api" }
        #expect(counted.count == 10 && counted.allSatisfy { $0.value == 1 && $0.labels["protocol"] == "tcp" })
    }

    @Test func badReloadKeepsTheOldRulesAndNamesTheLine() throws {
        let ns = try TestNamespace("reload")
        try ns.addAddress("10.6.0.5/32")
        let good = """
        rules:
          - name: vanished-address
            on: address-removed
            netns: [\(ns.name)]
        """
        let daemon = try DaemonProcess(policy: good)
        try daemon.waitReady(watching: [ns.name])
        let bad: [(String, Int, String)] = [
            (good + "\n  - name: x\n    on: [request\n", 7, "YAML syntax error"),
            (good + "\n    actoin: kill\n", 5, "unknown field 'actoin'"),
            (good + "\n  - name: y\n    on: request\n    match: 'dst 10.0.0.1 and dprt = :1'\n", 7, "bad filter: unknown term 'dprt'"),
        ]
        for (text, line, reason) in bad {
            try text.write(toFile: daemon.configPath, atomically: true, encoding: .utf8)
            let r = daemon.request("POST", "/v1/reload")
            let j = daemon.json(r.body)
            #expect(r.status == 422, "\(r)")
            #expect(j["line"] as? Int == line, "\(r.body)")
            #expect((j["reason"] as? String)?.contains(reason) == true, "\(r.body)")
            #expect((j["error"] as? String)?.hasPrefix("policy rejected, previous policy still in force: \(daemon.configPath):\(line):") == true)
        }
        // SIGHUP with the bad file: logged, also rejected.
        kill(daemon.process.processIdentifier, SIGHUP)
        let deadline = Date().addingTimeInterval(5)
        while !daemon.log.contains("policy reload rejected") && Date() < deadline { usleep(50_000) }
        #expect(daemon.log.contains("\(daemon.configPath):7:"))
        // The old rule is still in force and still works.
        let rules = daemon.json(daemon.request("GET", "/v1/rules").body)["rules"] as? [[String: Any]] ?? []
        #expect(rules.count == 1 && rules.first?["name"] as? String == "vanished-address")
        let fixture = try SocketFixture(netns: ns.name, args: ["10.6.0.5"])
        try ns.deleteAddress("10.6.0.5/32")
        #expect(records(daemon, rule: "vanished-address", netns: ns.name, count: 5).count == 5)
        let p = try fixture.probe()
        #expect(p.values.allSatisfy { $0 == "ECONNABORTED" }, "\(p)")
        let samples = try PrometheusText.parse(daemon.request("GET", "/metrics").body)
        #expect(samples.first { $0.name == "sockctl_policy_reloads_total" && $0.labels["result"] == "failed" }?.value == 4)
        #expect(samples.first { $0.name == "sockctl_policy_reloads_total" && $0.labels["result"] == "ok" }?.value == 0)
        // A good reload is taken.
        try (good.replacingOccurrences(of: "vanished-address", with: "renamed")).write(toFile: daemon.configPath, atomically: true, encoding: .utf8)
        #expect(daemon.request("POST", "/v1/reload").status == 200)
        #expect((daemon.json(daemon.request("GET", "/v1/rules").body)["rules"] as? [[String: Any]])?.first?["name"] as? String == "renamed")
    }

    @Test func requestsWithoutCredentialsOrTokenAreRefused() throws {
        let ns = try TestNamespace("auth")
        try ns.addAddress("10.7.0.5/32")
        let fixture = try SocketFixture(netns: ns.name, args: ["10.7.0.5"])
        // The listener and the accepted end of the TCP pair.
        let killBody = "{\"filter\":\"src 10.7.0.5 and sport = :7300\",\"netns\":[\"\(ns.name)\"]}"

        // Unix socket: 0600; even when opened up, SO_PEERCRED refuses other uids.
        let daemon = try DaemonProcess(policy: Self.requestOnly)
        try daemon.waitReady()
        var st = stat()
        #expect(stat(daemon.socketPath, &st) == 0 && st.st_mode & 0o777 == 0o600)
        chmod(daemon.dir, 0o755)
        chmod(daemon.socketPath, 0o666)
        let other = daemon.request("POST", "/v1/kill", body: killBody, asUser: "65534")
        #expect(other.status == 403, "\(other)")
        #expect((daemon.json(other.body)["error"] as? String)?.contains("uid 65534 may not use this API") == true)

        // TCP: bearer token required.
        let port = 20000 + Int(getpid() % 20000)
        let tokenFile = daemon.dir + "/token"
        try "s3cret-\(getpid())\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let tcp = try DaemonProcess(policy: Self.requestOnly, extraArgs: ["--token-file", tokenFile], api: "tcp://127.0.0.1:\(port)")
        let auth = "Authorization: Bearer s3cret-\(getpid())"
        try tcp.waitReady(tcp: "127.0.0.1:\(port)", headers: [auth])
        let none = tcp.request("POST", "/v1/kill", body: killBody, tcp: "127.0.0.1:\(port)")
        #expect(none.status == 401 && tcp.json(none.body)["error"] as? String == "missing bearer token")
        let wrong = tcp.request("POST", "/v1/kill", body: killBody, headers: ["Authorization: Bearer nope"], tcp: "127.0.0.1:\(port)")
        #expect(wrong.status == 401 && tcp.json(wrong.body)["error"] as? String == "wrong bearer token")
        #expect(tcp.request("GET", "/metrics", tcp: "127.0.0.1:\(port)").status == 401)
        // Nothing was destroyed by the refused requests.
        #expect(try fixture.probe().values.allSatisfy { $0 == "ok" })
        let ok = tcp.request("POST", "/v1/kill", body: killBody, headers: [auth], tcp: "127.0.0.1:\(port)")
        #expect(ok.status == 200 && tcp.json(ok.body)["destroyed"] as? Int == 2, "\(ok)")
        // The destroyed sockets got ECONNABORTED, their peer an RST; the UDP pair still moves data.
        let p = try fixture.probe { $0["tcp-10.7.0.5-client"] != "ok" }
        #expect(p["tcp-10.7.0.5-server"] == "ECONNABORTED" && p["tcp-10.7.0.5-listener"] == "ECONNABORTED", "\(p)")
        #expect(p["tcp-10.7.0.5-client"] == "ECONNRESET", "\(p)")
        #expect(p["udp-10.7.0.5-client"] == "ok", "\(p)")
    }

    @Test func malformedRequestsGet400AndChangeNothing() throws {
        let ns = try TestNamespace("bad")
        try ns.addAddress("10.8.0.5/32")
        let fixture = try SocketFixture(netns: ns.name, args: ["10.8.0.5"])
        let daemon = try DaemonProcess(policy: Self.requestOnly)
        try daemon.waitReady()
        let cases: [(String, String)] = [
            ("{\"filter\": \"src 10.8.0.5\", \"netns\": [\"\(ns.name)\"", "malformed JSON body"),
            ("{\"filter\": 5, \"netns\": [\"\(ns.name)\"]}", "malformed JSON body: wrong type at 'filter'"),
            ("{\"filter\": \"src 10.8.0.5 and (\", \"netns\": [\"\(ns.name)\"]}", "filter error at column"),
            ("{\"netns\": [\"\(ns.name)\"]}", "empty filter"),
            ("{\"filter\": \"src 10.8.0.5\", \"max\": -1}", "max must be 0 or more"),
        ]
        for (body, message) in cases {
            let r = daemon.request("POST", "/v1/kill", body: body)
            #expect(r.status == 400, "\(body) -> \(r)")
            #expect((daemon.json(r.body)["error"] as? String)?.hasPrefix(message) == true, "\(r.body)")
        }
        let missing = daemon.request("POST", "/v1/kill", body: "{\"filter\": \"src 10.8.0.5\", \"netns\": [\"no-such-netns-\(getpid())\"]}")
        #expect(missing.status == 404)
        #expect(try fixture.probe().values.allSatisfy { $0 == "ok" })
        #expect(daemon.records.isEmpty)
        #expect(daemon.request("GET", "/v1/nothing").status == 404)
    }

    @Test func eventsStreamKillsAsServerSentEvents() throws {
        let ns = try TestNamespace("sse")
        try ns.addAddress("10.9.0.5/32")
        let fixture = try SocketFixture(netns: ns.name, args: ["10.9.0.5"])
        let daemon = try DaemonProcess(policy: Self.requestOnly)
        try daemon.waitReady()
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        curl.arguments = ["curl", "-sN", "-m", "5", "--unix-socket", daemon.socketPath, "http://localhost/v1/events"]
        let out = Pipe()
        curl.standardOutput = out
        try curl.run()
        usleep(500_000)
        let r = daemon.request("POST", "/v1/kill", body: "{\"filter\":\"src 10.9.0.5 and sport = :7300\",\"netns\":[\"\(ns.name)\"]}")
        #expect(r.status == 200)
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        curl.waitUntilExit()
        let events = text.split(separator: "\n").filter { $0.hasPrefix("data: ") }
        #expect(events.count == 2, "\(text)")  // the listener and the accepted end (both on port 7300)
        #expect(events.allSatisfy { $0.contains("\"outcome\":\"destroyed\"") && $0.contains("\"rule\":\"api\"") })
        withExtendedLifetime(fixture) {}
    }
}
