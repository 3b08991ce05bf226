import Foundation
import TestSupport
import Testing
import SockDiag
@testable import SocketFilter

/// One expression: what sockctl parses, what ss is given (nil = the same text), which ss tables
/// (`-t -u` or `-x`), and for sockctl-only terms the predicate applied to ss's own output (uid from
/// `-e`, holders from `-p`, cookie from `sk:`) that says which of ss's rows must remain.
struct Case: CustomStringConvertible {
    var ours: String
    var ss: String?
    var unix = false
    var post: ((SSRow) -> Bool)? = nil
    var description: String { ours }
}

@Suite(.serialized) struct FilterEquivalenceTests {
    static func cases(childPid: Int32, childCookie: UInt64, onLo: Set<String>, auto: Set<String>,
                      cgroup: String?, socketUID: [UInt32: UInt32]) -> [Case] {
        var c: [Case] = []
        func i(_ e: String) { c.append(Case(ours: e)) }
        func x(_ e: String) { c.append(Case(ours: e, unix: true)) }
        // empty, state selectors and groups
        for e in ["", "state established", "state listening", "state time-wait", "state syn-sent",
                  "state close-wait", "state fin-wait-2", "state closed", "state connected",
                  "state synchronized", "state bucket", "state big", "state all", "exclude established",
                  "state established state close-wait", "state connected exclude time-wait",
                  "exclude listening exclude closed"] { i(e) }
        // ports and comparison operators
        for e in ["dport = :8080", "dport == 8080", "dport eq :8080", "dport :8080", "dport != :8080",
                  "dport neq :8080", "sport = :8080", "sport >= :8080", "sport > :8080", "sport <= :1024",
                  "sport < :1024", "sport lt :1024", "sport le :80", "sport gt :9000", "sport ge :9000",
                  "dport ge :1024 and dport le :9000", "sport > :1000 and sport < :9000",
                  "dport = :ssh", "sport = :http", "dport = :domain", "sport >= 32768"] { i(e) }
        // addresses, prefixes, v4-mapped IPv6
        for e in ["src 127.0.0.1", "src 127.0.0.0/8", "dst 127.0.0.1:8080", "src 10.20.0.0/24",
                  "dst 10.99.0.0/16", "dst 10.99.0.1:9999", "src 0.0.0.0/0", "src 0.0.0.0", "dst 0.0.0.0",
                  "src 10.20.0.1/255.255.255.0", "dst 10.99", "src [::1]", "src [::1]:22", "dst [::1]:22",
                  "src [fd20::/16]", "dst [fd20::2]:7000", "dst [fd20::2/128]", "src [::ffff:127.0.0.1]",
                  "src [::ffff:127.0.0.1]:443", "dst [::ffff:127.0.0.0/104]", "src *:443", "src :443",
                  "dst *", "src [::]", "src [::/0]", "dst [::]:0"] { i(e) }
        // precedence (left to right, equal precedence, implicit and) and negation
        for e in ["src 127.0.0.1 and dport = :8080", "src 127.0.0.1 or src [::1]",
                  "sport = :8080 or sport = :22 dport > :30000",
                  "sport = :8080 or dport = :8080 and src 127.0.0.1",
                  "sport = :8080 and src 127.0.0.1 or dport = :22",
                  "( sport = :8080 or dport = :8080 ) and not src 127.0.0.1",
                  "sport = :8080 or ( dport = :8080 and sport = :2222 )",
                  "sport = :8080 | dport = :8080 & sport = :2222",
                  "sport = :8080 || dport = :8080 && sport = :2222",
                  "not sport = :8080", "! dport = :8080", "not ( sport = :8080 or dport = :8080 )",
                  "not not sport = :22", "state established ! ( src 127.0.0.1 or src [::1] )",
                  "! sport = :8080 and ! dport = :8080 or sport = :80",
                  "autobound", "state established autobound", "autobound or sport = :8080"] { i(e) }
        // dev (kernel DEV_COND here, userspace in ss), fwmark
        for e in ["dev vA", "dev lo", "dev != vA", "dev = 1", "not dev vA and not dev lo", "dev vA or dev lo",
                  "dev vA and src [fd20::1]", "fwmark 0x10", "fwmark = 0x10/0xf0", "fwmark != 0x10",
                  "fwmark 0x20/0x20", "fwmark 0x0", "fwmark 0x10 and dport = :8080",
                  "fwmark 0x11 or fwmark 0x21", "state established not fwmark 0/0xffffffff"] { i(e) }
        // needing the userspace residual: the oracle is ss's own uid / holders / cookie columns
        func r(_ ours: String, _ ss: String, unix: Bool = false, _ p: @escaping (SSRow) -> Bool) {
            c.append(Case(ours: ours, ss: ss, unix: unix, post: p))
        }
        r("uid 1234", "") { $0.uid == 1234 }
        r("uid != 0", "") { $0.uid != 0 }
        r("state listening uid 1000-2000", "state listening") { (1000...2000).contains($0.uid) }
        r("uid >= 1000 or dport = :22", "") { $0.uid >= 1000 || $0.key.hasSuffix(":22") }
        r("sport = :3000 or uid 1234", "") { $0.uid == 1234 || $0.key.contains(":3000|") }
        r("dport = :8080 and not uid 1234", "dport = :8080") { $0.uid != 1234 }
        r("not ( uid 0 and sport = :8080 )", "") { !($0.uid == 0 && $0.key.contains(":8080|")) }
        r("comm sockfixchild and not comm python3", "") { row in
            row.users.contains { $0.comm == "sockfixchild" } && !row.users.contains { $0.comm == "python3" } }
        r("pid \(childPid) and sport = :3000", "sport = :3000") { row in row.users.contains { $0.pid == childPid } }
        r("cookie \(childCookie)", "") { $0.cookie == childCookie }
        // ss runs `not` on the kernel's AUTO and on its own port-range test separately, so an accepted
        // socket on a fixed port is neither autobound nor not; ours is the complement of ss's autobound.
        r("not autobound", "") { !auto.contains($0.key) }
        r("dev lo or uid 1234", "") { $0.uid == 1234 || onLo.contains($0.key) }
        // cgroup (CGROUP_COND): the fixture's child made its sockets inside a cgroup of its own
        if let cg = cgroup {
            for e in ["cgroup \(cg)", "cgroup != \(cg)", "cgroup \(cg) and sport = :3000",
                      "state listening not cgroup \(cg)", "cgroup \(cg) or dport = :22"] { i(e) }
        }
        // unix sockets: everything is userspace (ss -x)
        for e in ["", "src */stream.sock", "src */*.sock", "src @sockctl-t-*", "src *", "dst *",
                  "dst */stream.sock", "not src */stream.sock", "autobound", "not autobound",
                  "state listening", "state established", "src *seq.sock", "src */dgram.sock or src @*",
                  "state connected src *.sock"] { x(e) }
        r("comm sockfixchild and not comm python3", "", unix: true) { row in
            row.users.contains { $0.comm == "sockfixchild" } && !row.users.contains { $0.comm == "python3" } }
        // ss -x -e prints no uid for unix sockets: the oracle is the owner of the holder's fd
        r("uid 1234", "", unix: true) { row in unixInode(row.key).flatMap { socketUID[$0] } == 1234 }
        r("not uid 1234", "", unix: true) { row in unixInode(row.key).flatMap { socketUID[$0] } != 1234 }
        return c
    }

    /// The fixture both tests use: namespaces A and B, the socket-holding fixture in A (and its
    /// child with another uid, comm and cgroup), and the facts the case list is built from.
    struct Fixture {
        var ns: NamespacePair
        var procs: [UInt32: [SocketProcess]]
        var cases: [Case]
    }

    /// Builds the fixture under a unique tag, runs `body`, and tears everything down afterwards,
    /// also when setup or `body` throws.
    static func withFixture(tag: String, _ body: (Fixture) throws -> Void) throws {
        try withFixtureProcesses(tag: tag) { ns in try withCases(ns, body) }
    }

    /// The namespace pair with peer.py in B and fixture.py in A running, for `body`; everything is
    /// stopped and deleted afterwards, also when setup or `body` throws.
    static func withFixtureProcesses<T>(tag: String, _ body: (NamespacePair) throws -> T) throws -> T {
        let ns = try NamespacePair(tag: tag)
        defer { ns.teardown() }
        let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        let peer = try Holder(["nsenter", "--net=/run/netns/\(ns.b)", "python3", here.appendingPathComponent("peer.py").path])
        defer { peer.stop() }
        let fixture = try Holder(["nsenter", "--net=/run/netns/\(ns.a)", "python3", here.appendingPathComponent("fixture.py").path, tag, ns.tmp, ns.cgroup ?? ""])
        defer { fixture.stop() }
        return try body(ns)
    }

    private static func withCases(_ ns: NamespacePair, _ body: (Fixture) throws -> Void) throws {
        let procs = processTable()
        let child = procs.values.flatMap { $0 }.first { $0.comm == "sockfixchild" }
        #expect(child != nil)
        let (_, all) = ssRows(ns: ns.a, args: ["-t", "-u"], expr: "sport = :3000")
        let childCookie = all.first?.cookie ?? 0
        #expect(childCookie != 0)
        let onLo = Set(ssRows(ns: ns.a, args: ["-t", "-u"], expr: "dev lo").1.map(\.key))
        #expect(!onLo.isEmpty)
        let auto = Set(ssRows(ns: ns.a, args: ["-t", "-u"], expr: "autobound").1.map(\.key))
        let socketUID = socketOwners(procs)
        #expect(socketUID.values.contains(1234))  // the child's unix listener, for `uid 1234` on -x
        let cases = Self.cases(childPid: child?.pid ?? -1, childCookie: childCookie, onLo: onLo, auto: auto,
                               cgroup: ns.cgroup, socketUID: socketUID)
        try body(Fixture(ns: ns, procs: procs, cases: cases))
    }

    /// What ss lists for one case (`ss -H -n -a -e -p`, the same tables), narrowed by the case's
    /// oracle predicate for sockctl-only terms; records an issue when ss rejects the expression.
    static func ssKeys(_ cs: Case, ns: String, singleState: String?) -> [SSRow] {
        let (status, rows) = ssRows(ns: ns, args: cs.unix ? ["-x"] : ["-t", "-u"], expr: cs.ss ?? cs.ours, singleState: singleState)
        #expect(status == 0, "ss rejected '\(cs.ss ?? cs.ours)'")
        return rows.filter { cs.post?($0) ?? true }
    }

    /// ss drops its State column when exactly one state is selected; this is that state's name.
    static func singleState(_ f: SocketFilter) -> String? {
        let states = f.stateMask ?? StateNames.all
        return states.nonzeroBitCount == 1 ? SocketState(rawValue: UInt8(states.trailingZeroBitCount)).shortName : nil
    }

    @Test func sameSocketsAsSS() throws {
      try Self.withFixture(tag: "eq\(getpid())") { fx in
        let ns = fx.ns, procs = fx.procs
        let diag = try DiagSocket.open(in: ns.a)
        defer { close(diag.fd) }
        let ifindex = inNamespace(ns.a) { ["lo": if_nametoindex("lo"), "vA": if_nametoindex("vA")] } ?? [:]
        let context = FilterContext(resolveInterface: { ifindex[$0].flatMap { $0 == 0 ? nil : $0 } },
                                    resolveCgroup: FilterContext.systemCgroupID,
                                    ephemeralPorts: inNamespace(ns.a) { Evaluator.localPortRange() } ?? 32768...60999)

        var agreed = 0, kernelAccepted = 0, totalSockets = 0
        var failures: [String] = []
        for cs in fx.cases {
          do {
            let f = try SocketFilter.parse(cs.ours)
            let states = f.stateMask ?? StateNames.all
            var ours: [String] = []
            if cs.unix {
                let c = try f.compile(family: 1, context: context)
                for var s in try diag.unix(states: states) {
                    if c.needsProcesses { s.processes = procs[s.inode] ?? [] }
                    if c.matches(s) { ours.append(key(of: s)) }
                }
            } else {
                for family: UInt8 in [2, 10] {
                    let c = try f.compile(family: family, context: context)
                    if !c.bytecode.isEmpty { try BytecodeInterpreter.audit(c.bytecode) }
                    for proto: UInt8 in [6, 17] {
                        let dumped = try diag.inet(family: family, proto: proto, states: states, bytecode: c.bytecode)
                        if !c.bytecode.isEmpty { kernelAccepted += 1 }
                        for var s in dumped {
                            if c.needsProcesses { s.processes = procs[s.inode] ?? [] }
                            if c.matches(s) { ours.append(key(of: s)) }
                        }
                    }
                }
            }
            let theirs = Self.ssKeys(cs, ns: ns.a, singleState: Self.singleState(f)).map(\.key)
            totalSockets += ours.count
            if ours.sorted() == theirs.sorted() {
                agreed += 1
            } else {
                let o = Set(ours), t = Set(theirs)
                failures.append("'\(cs.ours)': only sockctl \(o.subtracting(t).sorted()), only ss \(t.subtracting(o).sorted())")
            }
          } catch {
            failures.append("'\(cs.ours)': \(error)")
          }
        }
        for f in failures { Issue.record(Comment(rawValue: f)) }
        let total = fx.cases.count
        print("filter-equivalence: \(agreed)/\(total) expressions agree with ss; \(kernelAccepted) bytecode dumps accepted by the kernel; \(totalSockets) sockets matched in all")
        #expect(agreed == total)
        #expect(agreed >= 80)
        #expect(totalSockets > 500)  // the fixture really produced sockets for the filters to select
      }
    }

    /// The same cases through the real CLI: `sockctl list --netns A -H --json -a -t -u|-x EXPR`,
    /// one process per expression, compared with ss's rows for the same expression. Also checks
    /// the NDJSON itself: every object is labelled with the namespace, and its uid and cookie are
    /// the ones ss reports for that socket.
    @Test func cliListMatchesSS() throws {
        let binary = CLIList.binary
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            Issue.record("sockctl binary not found at \(binary.path): run `swift build` (or `swift build --build-tests`) first")
            return
        }
      try Self.withFixture(tag: "cli\(getpid())") { fx in
        let ns = fx.ns
        var agreed = 0, totalSockets = 0, emptyCases = 0
        var failures: [String] = []
        for cs in fx.cases {
          do {
            let f = try SocketFilter.parse(cs.ours)
            // the harness dumps every state of the selected tables, as `ss -a` does
            var args = ["list", "--netns", ns.a, "-H", "--json", "-a"] + (cs.unix ? ["-x"] : ["-t", "-u"])
            if !cs.ours.isEmpty { args.append(cs.ours) }
            let r = try CLIList.run(args)
            let command = "sockctl \(args.joined(separator: " "))"
            // 0 = something listed, 1 = nothing matched (and nothing printed); anything else is an error
            guard r.status == 0 || r.status == 1 else {
                failures.append("'\(cs.ours)': `\(command)` exited \(r.status): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
                continue
            }
            let rows = try CLIList.rows(r.stdout)
            if (r.status == 1) != rows.isEmpty {
                failures.append("'\(cs.ours)': exit status \(r.status) with \(rows.count) sockets printed")
            }
            if rows.isEmpty { emptyCases += 1 }
            for row in rows where row.netns != ns.a {
                failures.append("'\(cs.ours)': \(row.key) labelled netns \(row.netns ?? "nil"), expected \(ns.a)")
            }
            let ours = rows.map(\.key)
            let ssRows = Self.ssKeys(cs, ns: ns.a, singleState: Self.singleState(f))
            let theirs = ssRows.map(\.key)
            totalSockets += ours.count
            if ours.sorted() == theirs.sorted() {
                agreed += 1
            } else {
                let o = Set(ours), t = Set(theirs)
                failures.append("'\(cs.ours)': only sockctl list \(o.subtracting(t).sorted()), only ss \(t.subtracting(o).sorted())")
            }
            // the same socket must carry the same identity fields as ss shows (-e: uid:, sk:)
            let byKey = Dictionary(rows.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
            for s in ssRows {
                guard let row = byKey[s.key] else { continue }
                if s.cookie != 0, row.cookie != s.cookie {
                    failures.append("'\(cs.ours)': \(s.key) cookie \(row.cookie.map(String.init) ?? "nil"), ss says \(s.cookie)")
                }
                if !cs.unix, row.uid != s.uid {
                    failures.append("'\(cs.ours)': \(s.key) uid \(row.uid.map(String.init) ?? "nil"), ss says \(s.uid)")
                }
            }
          } catch {
            failures.append("'\(cs.ours)': \(error)")
          }
        }
        for f in failures { Issue.record(Comment(rawValue: f)) }
        let total = fx.cases.count
        print("filter-equivalence (sockctl list): \(agreed)/\(total) expressions agree with ss; \(totalSockets) sockets listed in all; \(emptyCases) expressions listed nothing")
        #expect(agreed == total)
        #expect(totalSockets > 500)  // the fixture really produced sockets for the filters to select
        #expect(emptyCases < total / 2)
      }
    }
}
