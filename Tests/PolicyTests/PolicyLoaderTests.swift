import Testing
@testable import Policy

/// Policy files: what loads, and the exact message (file:line:column + what was expected) for each
/// kind of mistake.
@Suite struct PolicyLoaderTests {
    func load(_ yaml: String) throws -> Policy { try PolicyLoader.parse(yaml, file: "p.yaml") }

    func message(_ yaml: String) -> String {
        do {
            _ = try load(yaml)
            return "(loaded)"
        } catch {
            return "\(error)"
        }
    }

    @Test func minimalPolicyFromDesign() throws {
        let p = try load("""
        rules:
          - name: vanished-address
            on: address-removed      # match defaults to sockets bound to the removed address
            netns: all
            action: kill
        """)
        #expect(p.rules == [Rule(name: "vanished-address", trigger: .addressRemoved, netns: .all, action: .kill, line: 2)])
    }

    @Test func everyField() throws {
        let p = try load("""
        rules:
          - name: app-lost-rights
            on:
              interval: 30s
            match:
              filter: 'dport = :443'
              uid: [10005, 20000-20999]
              cgroup: /sys/fs/cgroup/app.slice
            except: {loopback: true, uid: 0}
            netns: [pod-*, host]
            action: audit
          - name: vpn-up
            on: link-up
            interface: wg*
            match: 'uid 1000 and not dev wg0'
          - name: by-request
            on: request
            match: 'dst 10.244.0.0/16'
            netns: blue
        """)
        #expect(p.rules.count == 3)
        let r = p.rules[0]
        #expect(r.trigger == .interval(30))
        #expect(r.match == Selection(filter: "dport = :443", uids: [10005...10005, 20000...20999], cgroup: "/sys/fs/cgroup/app.slice"))
        #expect(r.except == Selection(uids: [0...0], loopback: true))
        #expect(r.netns == .patterns(["pod-*", "host"]))
        #expect(r.action == .audit)
        #expect(p.rules[1].interface == "wg*" && p.rules[1].trigger == .linkUp && p.rules[1].netns == .all)
        #expect(p.rules[2].netns == .patterns(["blue"]) && p.rules[2].action == .kill)
    }

    @Test func composedFilterText() throws {
        let r = try load("""
        rules:
          - name: r
            on: address-removed
            match: {filter: 'sport = :22', uid: [1000-1999]}
            except: {loopback: true}
        """).rules[0]
        let text = r.filterText(eventTerm: "src 10.0.0.1", cgroupDirectories: { _ in [] })
        #expect(text == .some("( src 10.0.0.1 ) and ( sport = :22 ) and ( uid 1000-1999 ) and not ( ( src 127.0.0.0/8 or dst 127.0.0.0/8 or src ::1 or dst ::1 ) )"))
        // A match on a cgroup that does not exist selects nothing (not everything).
        let c = Rule(name: "c", trigger: .request, match: Selection(cgroup: "/sys/fs/cgroup/gone"))
        #expect(c.filterText(eventTerm: nil, cgroupDirectories: { _ in [] }) == nil)
        #expect(c.filterText(eventTerm: nil, cgroupDirectories: { [$0, $0 + "/a b"] }) == .some("( cgroup /sys/fs/cgroup/gone or cgroup /sys/fs/cgroup/gone/a\\ b )"))
    }

    @Test func unknownRuleField() {
        #expect(message("""
        rules:
          - name: a
            on: address-removed
            acton: kill
        """) == "p.yaml:4:5: unknown field 'acton' (expected one of: name, on, interface, match, except, netns, action)")
    }

    @Test func unknownTopLevelAndMatchFields() {
        #expect(message("rule:\n  - name: a\n") == "p.yaml:1:1: unknown field 'rule' (expected: rules)")
        #expect(message("""
        rules:
          - name: a
            on: request
            match:
              filter: 'dst 10.0.0.1'
              uids: 5
        """) == "p.yaml:6:7: unknown field 'uids' (expected one of: filter, uid, cgroup, loopback)")
    }

    @Test func badDuration() {
        #expect(message("""
        rules:
          - name: a
            on: {interval: 30 seconds}
            match: 'uid 5'
        """) == "p.yaml:3:20: bad duration '30 seconds' (expected a number with ms, s, m or h, at least 10ms, e.g. 30s)")
    }

    @Test func badEventAndAction() {
        #expect(message("rules:\n  - name: a\n    on: address-gone\n") ==
                "p.yaml:3:9: unknown event 'address-gone' (expected: address-removed, link-down, link-up, request or {interval: 30s})")
        #expect(message("rules:\n  - name: a\n    on: address-removed\n    action: nuke\n") ==
                "p.yaml:4:13: unknown action 'nuke' (expected: kill or audit)")
    }

    @Test func badFilterPointsIntoTheFile() {
        // Plain scalar: the value starts at column 12 of line 4, so the filter's column 20 ('sprt') is column 31.
        #expect(message("""
        rules:
          - name: a
            on: request
            match: dst 10.0.0.0/8 and sprt = :80
        """) == "p.yaml:4:31: bad filter: unknown term 'sprt' (expected src, dst, sport, dport, dev, fwmark, cgroup, autobound, uid, pid, comm, cookie, state, exclude) at 'sprt'")
        // Quoted: one more for the quote.
        #expect(message("""
        rules:
          - name: a
            on: request
            match:
              filter: "uid 5 and ( dport = :80"
        """).hasPrefix("p.yaml:5:"))
        // Folded block: the second line of the value.
        #expect(message("""
        rules:
          - name: a
            on: request
            match:
              filter: >
                dst 10.0.0.0/8 and
                bogus 1
        """).hasPrefix("p.yaml:7:9: bad filter: unknown term 'bogus'"))
    }

    @Test func yamlSyntaxError() {
        let m = message("rules:\n  - name: a\n    on: [request\n")
        #expect(m.hasPrefix("p.yaml:4:1: YAML syntax error: "))
    }

    @Test func otherMistakes() {
        #expect(message("rules:\n  - on: request\n    match: 'uid 1'\n") == "p.yaml:2:5: rule without 'name'")
        #expect(message("rules:\n  - name: a\n    on: request\n") ==
                "p.yaml:2:5: rule 'a' on request needs a 'match' (it would select every socket)")
        #expect(message("rules:\n  - name: a\n    on: link-down\n  - name: a\n    on: link-down\n") ==
                "p.yaml:4:5: duplicate rule name 'a' (first used on line 2)")
        #expect(message("rules:\n  - name: a\n    on: link-down\n    netns: [all, blue]\n") ==
                "p.yaml:4:13: 'all' cannot be combined with other namespaces")
        #expect(message("rules:\n  - name: a\n    on: request\n    match: {uid: 9-3}\n") ==
                "p.yaml:4:18: bad uid '9-3' (expected a number or a range like 1000-1999)")
        #expect(message("rules:\n  - name: a\n    on: request\n    interface: eth0\n    match: 'uid 1'\n") ==
                "p.yaml:4:16: 'interface' applies only to address-removed, link-down and link-up rules")
    }

    @Test func missingFile() {
        #expect(throws: PolicyError(file: "/nonexistent/p.yaml", line: 0, column: 0, message: "cannot open policy file: no such file")) {
            try PolicyLoader.load(path: "/nonexistent/p.yaml")
        }
    }

    @Test func namespaceSelector() {
        let s = NamespaceSelector.patterns(["pod-*", "host"])
        #expect(s.covers(name: "pod-17", isHost: false))
        #expect(!s.covers(name: "blue", isHost: false))
        #expect(s.covers(name: nil, isHost: true))
        #expect(NamespaceSelector.all.covers(name: nil, isHost: false))
    }
}
