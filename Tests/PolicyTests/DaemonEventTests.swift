import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The daemon as users run it (.build/debug/sockctl daemon), against sockets in namespaces the
/// tests create: what its rules destroy, and what they leave alone.
@Suite struct DaemonEventTests {
    /// Every socket of the fixture destroyed: ECONNABORTED, except that one end of the TCP pair may
    /// have got its peer's RST first (ECONNRESET) while the address still routes.
    static func killed(_ p: [String: String]) -> Bool {
        p.allSatisfy { k, v in v == "ECONNABORTED" || (k.hasPrefix("tcp-") && !k.hasSuffix("listener") && v == "ECONNRESET") }
            && p.filter { $0.key.hasPrefix("tcp-") && !$0.key.hasSuffix("listener") }.values.contains("ECONNABORTED")
    }

    static func targets(_ p: [String: String], _ addr: String) -> [String: String] { p.filter { $0.key.contains("-\(addr)-") } }

    /// One fixture address's sockets, each reported once: the listener, both TCP ends and the two
    /// UDP sockets (5). While the address still routes, the BPF backend may not meet the second end
    /// of the TCP pair: the first end's RST closed it before the iterator got there, so there is
    /// nothing to destroy or report (4; netlink reports it as already-gone). Never a socket twice.
    static func onceEach(_ recs: [[String: Any]]) -> Bool {
        let cookies = recs.compactMap { $0["cookie"] as? Int }
        return (4...5).contains(recs.count) && Set(cookies).count == cookies.count
    }

    /// A daemon with the one address-removed rule (`vanished-address`, action kill) for `ns`,
    /// ready and watching it.
    static func vanishedAddressDaemon(watching ns: TestNamespace, extraArgs: [String] = []) throws -> DaemonProcess {
        let daemon = try DaemonProcess(policy: """
        rules:
          - name: vanished-address
            on: address-removed
            netns: [\(ns.name)]
            action: kill
        """, extraArgs: extraArgs)
        try daemon.waitReady(watching: [ns.name])
        return daemon
    }

    @Test func addressRemovedKillsSocketsBoundToIt() throws {
        let ns = try TestNamespace("addr")
        for a in ["10.1.0.5/32", "10.1.0.6/32", "fd00:5::5/128", "fd00:5::6/128"] { try ns.addAddress(a) }
        let daemon = try Self.vanishedAddressDaemon(watching: ns)
        let fixture = try SocketFixture(netns: ns.name, args: ["10.1.0.5", "10.1.0.6", "fd00:5::5", "fd00:5::6"])
        #expect(try fixture.probe().values.allSatisfy { $0 == "ok" })

        try ns.deleteAddress("10.1.0.5/32")
        try ns.deleteAddress("fd00:5::5/128")
        // Probe only once the daemon reported its destroys: a send on a vanished address fails by itself.
        #expect(records(daemon, rule: "vanished-address", netns: ns.name, count: 10).count == 10)
        let after = try fixture.probe()
        for addr in ["10.1.0.5", "fd00:5::5"] {
            let t = Self.targets(after, addr)
            #expect(t.count == 4)
            // TCP established (both ends), TCP listening, connected UDP: all got ECONNABORTED.
            #expect(t.values.allSatisfy { $0 == "ECONNABORTED" }, "\(addr): \(t)")
        }
        for addr in ["10.1.0.6", "fd00:5::6"] {
            let b = Self.targets(after, addr)
            #expect(b.count == 4 && b.values.allSatisfy { $0 == "ok" }, "bystanders on \(addr) must still move data: \(b)")
        }
        // One JSON line per destroyed socket: 5 per address (listener, both TCP ends, both UDP sockets).
        let recs = records(daemon, rule: "vanished-address", netns: ns.name, count: 10)
        #expect(recs.count == 10)
        #expect(recs.allSatisfy { $0["outcome"] as? String == "destroyed" && $0["action"] as? String == "kill" })
        #expect(Set(recs.compactMap { $0["src"] as? String }) == ["10.1.0.5", "fd00:5::5"])

        // /metrics is Prometheus text and counts exactly these kills.
        let m = daemon.request("GET", "/metrics")
        #expect(m.status == 200)
        let samples = try PrometheusText.parse(m.body)
        let destroyed = samples.filter { $0.name == "sockctl_sockets_destroyed_total" && $0.labels["rule"] == "vanished-address" && $0.labels["netns"] == ns.name }
        #expect(destroyed.reduce(0) { $0 + $1.value } == 10)
        #expect(destroyed.first { $0.labels["protocol"] == "tcp" }?.value == 6)
        #expect(destroyed.first { $0.labels["protocol"] == "udp" }?.value == 4)
        #expect(samples.first { $0.name == "sockctl_event_to_kill_seconds_count" }?.value == 2)
        #expect(samples.first { $0.name == "sockctl_destroy_errors_total" } == nil)
    }

    /// An IPv6 socket on an IPv4-mapped address (::ffff:10.11.0.5) is bound to the IPv4 address as
    /// far as the kernel's routing goes: removing 10.11.0.5 must destroy it too. The same kinds of
    /// sockets on another mapped address and on a native IPv6 address stay.
    @Test func addressRemovedKillsIPv4MappedSockets() throws {
        let ns = try TestNamespace("mapped")
        for a in ["10.11.0.5/32", "10.11.0.6/32", "fd00:11::5/128"] { try ns.addAddress(a) }
        let daemon = try Self.vanishedAddressDaemon(watching: ns)
        // AF_INET6 sockets throughout: listener, both TCP ends and connected UDP on each address.
        let fixture = try SocketFixture(netns: ns.name, args: ["::ffff:10.11.0.5", "::ffff:10.11.0.6", "fd00:11::5"])
        #expect(try fixture.probe().values.allSatisfy { $0 == "ok" })
        let mapped = Set(sh(["ip", "netns", "exec", ns.name, sockctlBinary, "list", "-a", "--json", "src ::ffff:10.11.0.5"]).out
            .split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
            .filter { $0["family"] as? String == "inet6" }.compactMap { $0["cookie"] as? Int })
        #expect(mapped.count == 5, "five AF_INET6 sockets on ::ffff:10.11.0.5 before the event")

        try ns.deleteAddress("10.11.0.5/32")
        let recs = records(daemon, rule: "vanished-address", netns: ns.name, count: 5)
        #expect(recs.count == 5)
        #expect(recs.allSatisfy { $0["outcome"] as? String == "destroyed" && $0["family"] as? String == "inet6" }, "\(recs)")
        #expect(Set(recs.compactMap { $0["cookie"] as? Int }) == mapped)
        let after = try fixture.probe()
        let gone = Self.targets(after, "::ffff:10.11.0.5")
        #expect(gone.count == 4 && gone.values.allSatisfy { $0 == "ECONNABORTED" }, "\(after)")
        for addr in ["::ffff:10.11.0.6", "fd00:11::5"] {
            let b = Self.targets(after, addr)
            #expect(b.count == 4 && b.values.allSatisfy { $0 == "ok" }, "bystanders on \(addr) must still move data: \(b)")
        }
        usleep(200_000)
        #expect(daemon.records.count == 5, "nothing else acted on")
    }

    @Test func namespaceCreatedAfterStartIsWatchedAndDroppedWhenDeleted() throws {
        let prefix = "sockctl-d-late-\(getpid())"
        let daemon = try DaemonProcess(policy: """
        rules:
          - name: vanished-address
            on: address-removed
            netns: ["\(prefix)-*"]
        """)
        try daemon.waitReady()
        var ns: TestNamespace? = try TestNamespace("late")
        let name = ns!.name
        #expect(name.hasPrefix(prefix))
        try ns!.addAddress("10.2.0.5/32")
        try ns!.addAddress("10.2.0.6/32")
        try daemon.waitReady(watching: [name])
        let fixture = try SocketFixture(netns: name, args: ["10.2.0.5", "10.2.0.6"])
        try ns!.deleteAddress("10.2.0.5/32")
        #expect(records(daemon, rule: "vanished-address", netns: name, count: 5).count == 5)
        let after = try fixture.probe()
        #expect(Self.targets(after, "10.2.0.5").values.allSatisfy { $0 == "ECONNABORTED" }, "\(after)")
        #expect(Self.targets(after, "10.2.0.6").values.allSatisfy { $0 == "ok" }, "\(after)")
        #expect(records(daemon, rule: "vanished-address", netns: name, count: 5).count == 5)

        // Deleted: the daemon stops watching it.
        withExtendedLifetime(fixture) {}
        ns = nil
        let deadline = Date().addingTimeInterval(10)
        var watched: [String] = [name]
        while Date() < deadline {
            watched = daemon.json(daemon.request("GET", "/healthz").body)["netns"] as? [String] ?? []
            if !watched.contains(name) { break }
            usleep(100_000)
        }
        #expect(!watched.contains(name))
        #expect(daemon.log.contains("stopped watching network namespace"))
    }

    @Test func uidRuleKillsOnlyThatUsersSockets() throws {
        let ns = try TestNamespace("uid")
        try ns.addAddress("10.3.0.5/32")
        try ns.addAddress("10.3.0.6/32")
        let daemon = try DaemonProcess(policy: """
        rules:
          - name: revoked-uid
            on: {interval: 200ms}
            match: {uid: [54321]}
            netns: [\(ns.name)]
        """)
        try daemon.waitReady()
        let user = try SocketFixture(netns: ns.name, args: ["10.3.0.5"], prefix: ["setpriv", "--reuid", "54321", "--regid", "54321", "--clear-groups"],
                                 python: "/usr/bin/python3")
        let other = try SocketFixture(netns: ns.name, args: ["10.3.0.6"])
        let recs = records(daemon, rule: "revoked-uid", netns: ns.name, count: 4)
        let u = try user.probe()
        #expect(Self.killed(u), "\(u)")
        #expect(try other.probe().values.allSatisfy { $0 == "ok" })
        // Each socket once (the interval rule does not hit a socket it already acted on again).
        usleep(600_000)
        #expect(Self.onceEach(records(daemon, rule: "revoked-uid", netns: ns.name)),
                "\(records(daemon, rule: "revoked-uid", netns: ns.name).map { "\($0["cookie"] ?? "") \($0["state"] ?? "") \($0["outcome"] ?? "") \($0["src"] ?? "")" })")
        #expect(recs.allSatisfy { $0["uid"] as? Int == 54321 })
    }

    @Test func cgroupRuleKillsSocketsOfProcessesInTheCgroup() throws {
        let root = "/sys/fs/cgroup/unified"
        guard FileManager.default.fileExists(atPath: root + "/cgroup.procs") || FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.procs") else {
            Issue.record("no cgroup v2 hierarchy")
            return
        }
        let base = FileManager.default.fileExists(atPath: root + "/cgroup.procs") ? root : "/sys/fs/cgroup"
        let cgroup = "\(base)/sockctl-test-\(uniqueSuffix())"
        try #require(mkdir(cgroup, 0o755) == 0, "mkdir \(cgroup)")
        defer { rmdir(cgroup) }
        let ns = try TestNamespace("cg")
        try ns.addAddress("10.4.0.5/32")
        try ns.addAddress("10.4.0.6/32")
        let daemon = try DaemonProcess(policy: """
        rules:
          - name: cgroup-lost-network
            on: {interval: 200ms}
            match: {cgroup: \(cgroup)}
            netns: [\(ns.name)]
        """)
        try daemon.waitReady()
        do {
            // Sockets take their cgroup from the process that creates them: move the process in first.
            let inside = try SocketFixture(netns: ns.name, args: ["10.4.0.5"],
                                           outer: ["sh", "-c", "echo $$ > \(cgroup)/cgroup.procs && exec \"$@\"", "sh"])
            let outside = try SocketFixture(netns: ns.name, args: ["10.4.0.6"])
            #expect(records(daemon, rule: "cgroup-lost-network", netns: ns.name, count: 4).count >= 4)
            let p = try inside.probe()
            #expect(Self.killed(p), "\(p)")
            #expect(try outside.probe().values.allSatisfy { $0 == "ok" })
            usleep(600_000)
            #expect(Self.onceEach(records(daemon, rule: "cgroup-lost-network", netns: ns.name)))
        }
    }

    @Test func linkDownAndLinkUpRules() throws {
        let ns = try TestNamespace("link")
        func ip(_ args: String...) throws {
            let r = sh(["ip", "-n", ns.name] + args)
            try #require(r.status == 0, "ip \(args): \(r.err)")
        }
        try ip("link", "add", "lan0", "type", "veth", "peer", "name", "lan1")
        try ip("link", "add", "vpn0", "type", "veth", "peer", "name", "vpn1")
        try ip("addr", "add", "10.10.0.1/24", "dev", "lan0")
        try ip("link", "set", "lan1", "up")
        try ip("link", "set", "lan0", "up")
        try ns.addAddress("10.10.1.1/32")
        let daemon = try DaemonProcess(policy: """
        rules:
          - name: lan-down
            on: link-down
            interface: lan0
            netns: [\(ns.name)]
          - name: vpn-up
            on: link-up
            interface: vpn0
            match: 'src 10.10.1.1 and sport = :7300'
            netns: [\(ns.name)]
            action: audit
        """)
        try daemon.waitReady(watching: [ns.name])
        let fixture = try SocketFixture(netns: ns.name, args: ["10.10.0.1", "10.10.1.1"])
        // lan0 down: the sockets on its address go; those on lo's stay.
        try ip("link", "set", "lan0", "down")
        let down = records(daemon, rule: "lan-down", netns: ns.name, count: 4)
        #expect(Self.onceEach(down) && down.allSatisfy { $0["src"] as? String == "10.10.0.1" && $0["trigger"] as? String == "link-down lan0" })
        let p = try fixture.probe()
        // The address is still on the (down) link, so one end of the pair may see the other's RST.
        #expect(Self.killed(Self.targets(p, "10.10.0.1")), "\(p)")
        #expect(Self.targets(p, "10.10.1.1").values.allSatisfy { $0 == "ok" }, "\(p)")
        // vpn0 comes up: the audit rule reports the listener and the accepted end on port 7300.
        try ip("link", "set", "vpn1", "up")
        try ip("link", "set", "vpn0", "up")
        let up = records(daemon, rule: "vpn-up", netns: ns.name, count: 2)
        #expect(up.count == 2 && up.allSatisfy { $0["trigger"] as? String == "link-up vpn0" && $0["outcome"] as? String == "would-destroy" })
        #expect(try fixture.probe().filter { $0.key.contains("10.10.1.1") }.values.allSatisfy { $0 == "ok" })
        // Nothing fired for lan1 or vpn1 (their names do not match the rules' interfaces).
        #expect(daemon.records.count == records(daemon, rule: "lan-down", netns: ns.name).count + 2)
    }

    @Test func auditModeDestroysNothingAndLogsEachMatch() throws {
        let ns = try TestNamespace("audit")
        try ns.addAddress("10.5.0.5/32")
        let daemon = try Self.vanishedAddressDaemon(watching: ns, extraArgs: ["--audit"])
        let fixture = try SocketFixture(netns: ns.name, args: ["10.5.0.5"])
        let cookiesBefore = Set(sh(["ip", "netns", "exec", ns.name, sockctlBinary, "list", "-a", "--json", "src 10.5.0.5"]).out
            .split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["cookie"] as? Int })
        #expect(cookiesBefore.count == 5)
        try ns.deleteAddress("10.5.0.5/32")
        // Wait for the audit lines, then check that every socket is still there, none aborted.
        let recs = records(daemon, rule: "vanished-address", netns: ns.name, count: 5)
        #expect(recs.count == 5)
        #expect(recs.allSatisfy { $0["action"] as? String == "audit" && $0["outcome"] as? String == "would-destroy" })
        #expect(Set(recs.compactMap { $0["cookie"] as? Int }) == cookiesBefore)
        // (The address is gone, so traffic on it may stall, but nothing was aborted.)
        #expect(try fixture.probe().values.allSatisfy { !$0.contains("ECONNABORTED") })
        let cookiesAfter = Set(sh(["ip", "netns", "exec", ns.name, sockctlBinary, "list", "-a", "--json", "src 10.5.0.5"]).out
            .split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["cookie"] as? Int })
        #expect(cookiesAfter == cookiesBefore)
        let samples = try PrometheusText.parse(daemon.request("GET", "/metrics").body)
        #expect(samples.first { $0.name == "sockctl_sockets_destroyed_total" } == nil)
        #expect(samples.filter { $0.name == "sockctl_audit_matches_total" }.reduce(0) { $0 + $1.value } == 5)
    }
}

/// A small reader of the Prometheus text exposition format (0.0.4): `# TYPE`/`# HELP` lines and
/// samples `name{label="value",...} number`. Throws on any line that is neither.
enum PrometheusText {
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    struct Malformed: Error, CustomStringConvertible {
        var line: String
        var description: String { "not Prometheus text: \(line)" }
    }

    static func parse(_ text: String) throws -> [Sample] {
        var out: [Sample] = []
        var typed: Set<String> = []
        for raw in text.split(separator: "\n") {
            let line = String(raw)
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]) else { throw Malformed(line: line) }
                typed.insert(String(parts[2]))
                continue
            }
            if line.hasPrefix("#") { continue }
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { throw Malformed(line: line) }
            let series = line[..<space]
            var name = String(series)
            var labels: [String: String] = [:]
            if let brace = series.firstIndex(of: "{") {
                guard series.last == "}" else { throw Malformed(line: line) }
                name = String(series[..<brace])
                let body = series[series.index(after: brace)..<series.index(before: series.endIndex)]
                var rest = Substring(body)
                while !rest.isEmpty {
                    guard let eq = rest.firstIndex(of: "="), rest[rest.index(after: eq)] == "\"" else { throw Malformed(line: line) }
                    let key = String(rest[..<eq])
                    var i = rest.index(eq, offsetBy: 2)
                    var v = ""
                    while i < rest.endIndex && rest[i] != "\"" {
                        if rest[i] == "\\" { i = rest.index(after: i) }
                        v.append(rest[i])
                        i = rest.index(after: i)
                    }
                    guard i < rest.endIndex else { throw Malformed(line: line) }
                    labels[key] = v
                    rest = rest[rest.index(after: i)...]
                    if rest.first == "," { rest = rest.dropFirst() }
                }
            }
            guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }) else { throw Malformed(line: line) }
            let family = ["_bucket", "_sum", "_count", "_total"].reduce(name) { n, s in n.hasSuffix(s) && !typed.contains(n) ? String(n.dropLast(s.count)) : n }
            guard typed.contains(name) || typed.contains(family) else { throw Malformed(line: "no # TYPE for: " + line) }
            out.append(Sample(name: name, labels: labels, value: value))
        }
        return out
    }
}
