import Foundation
@testable import SavedSYN
import Testing

struct DatabasePolicyTests {
    @Test func debianDatabaseLoadsAndMatches() throws {
        let db = try P0fDatabase(contentsOf: "/etc/p0f/p0f.fp")
        // p0f 3.09b's file: every [tcp:request] signature line is kept.
        let text = try String(contentsOfFile: "/etc/p0f/p0f.fp", encoding: .utf8)
        var inReq = false, count = 0
        for l in text.split(separator: "\n") {
            if l.hasPrefix("[") { inReq = l == "[tcp:request]" }
            if inReq && l.hasPrefix("sig") { count += 1 }
        }
        #expect(db.entries.count == count)
        let linux = try SYNFingerprint(bytes: linuxSYN, database: db)
        #expect(linux.os == "Linux 2.2.x-3.x")
        #expect(linux.match?.entry.generic == true)
        let ours = try SYNFingerprint(bytes: linuxSYN, database: BuiltinSignatures.database)
        #expect(ours.os == "Linux 4.x-6.x")
        #expect(ours.match?.entry.source?.hasPrefix("measured") == true)
        // Built-in first, then the file: the specific modern label wins.
        #expect(try SYNFingerprint(bytes: linuxSYN, database: BuiltinSignatures.database.merged(with: db)).os == "Linux 4.x-6.x")
    }

    @Test func builtinEntriesAllHaveASource() {
        #expect(!BuiltinSignatures.database.entries.isEmpty)
        for e in BuiltinSignatures.database.entries {
            #expect(e.source?.isEmpty == false, "line \(e.lineNumber) has no source")
        }
    }

    @Test func databaseErrorsNameLineAndColumn() {
        let bad = """
        classes = win,unix

        [tcp:request]
        label = s:unix:Linux:x
        sig   = 4:64:0:*:mss*20,10:mss,sok,qq:df:0
        """
        #expect(throws: P0fDatabase.LoadError(file: "t.fp", line: 5, column: 36, message: "unrecognized TCP option")) {
            try P0fDatabase(text: bad, origin: "t.fp")
        }
        #expect(throws: P0fDatabase.LoadError(file: "t.fp", line: 3, column: 11, message: "unknown class 'beos' (declare it in 'classes = ...')")) {
            try P0fDatabase(text: "classes = win\n[tcp:request]\nlabel = s:beos:Be:5\n", origin: "t.fp")
        }
    }

    @Test func fuzzyRules() throws {
        let db = try P0fDatabase(text: """
        classes = unix
        [tcp:request]
        label = s:unix:Test:exact
        sig = 4:64:0:*:mss*44,7:mss,sok,ts,nop,ws:df,id+:0
        """, origin: "t")
        // ECN added (allowed fuzzy), DF dropped with ID 0 (id- added): fuzzy.
        var b = linuxSYN
        b[1] = 0x02
        var fp = try SYNFingerprint(bytes: b, database: db)
        #expect(fp.os == "Test exact" && fp.match?.fuzzy == true)
        // TTL more than 35 below the signature's: fuzzy, distance guessed.
        b = linuxSYN
        b[8] = 20
        fp = try SYNFingerprint(bytes: b, database: db)
        #expect(fp.match?.fuzzy == true && fp.match?.distance == 12)
        // A different quirk (seq-) does not match at all.
        b = linuxSYN
        b[24] = 0; b[25] = 0; b[26] = 0; b[27] = 0
        #expect(try SYNFingerprint(bytes: b, database: db).os == nil)
    }

    @Test func policyDecides() throws {
        let policy = try SYNPolicy(yaml: """
        default: allow
        rules:
          - name: tag-linux
            match: { os: "Linux*" }
            action: tag
            tag: linux
          - name: low-mss
            match: { mss: "< 1000", quirks: [df, "!ecn"] }
            action: deny
          - name: modern-layout
            match:
              fingerprint: "%:2-4-8-1-3:%:%"
              ttl: "60-64"
              distance: 0
              wscale: ">= 7"
              options: "mss,sok,ts,*"
            action: allow
          - name: rest
            match: { ttl: "> 0" }
            action: deny
        """, file: "p.yaml")
        let fp = try SYNFingerprint(bytes: linuxSYN, database: BuiltinSignatures.database)
        #expect(policy.evaluate(fp) == SYNPolicy.Decision(action: .allow, tags: ["linux"], rule: "modern-layout"))
        var b = linuxSYN
        b[42] = 0x02; b[43] = 0x00  // MSS 512
        #expect(policy.evaluate(try SYNFingerprint(bytes: b)).action == .deny)
        #expect(policy.evaluate(try SYNFingerprint(bytes: b)).rule == "low-mss")
        b = linuxSYN
        b[8] = 50
        #expect(policy.evaluate(try SYNFingerprint(bytes: b)).rule == "rest")
    }

    @Test func policyErrorsNameFileLineColumn() {
        #expect(throws: SYNPolicy.LoadError(file: "p.yaml", line: 4, column: 13, message: "unknown action 'drop' (expected allow, deny or tag)")) {
            try SYNPolicy(yaml: "rules:\n  - name: a\n    match: { ttl: 64 }\n    action: drop\n", file: "p.yaml")
        }
        #expect(throws: SYNPolicy.LoadError(file: "p.yaml", line: 3, column: 19, message: "'ttl': 'sixty' is not a number, a range N-M, or an operator (< <= > >= = !=) and a number")) {
            try SYNPolicy(yaml: "rules:\n  - name: a\n    match: { ttl: sixty }\n    action: deny\n", file: "p.yaml")
        }
        #expect(throws: SYNPolicy.LoadError(file: "p.yaml", line: 3, column: 14, message: "unknown condition 'port' (expected os, fingerprint, ttl, mss, wscale, options, distance, quirks)")) {
            try SYNPolicy(yaml: "rules:\n  - name: a\n    match: { port: 1 }\n    action: deny\n", file: "p.yaml")
        }
        #expect(throws: SYNPolicy.LoadError(file: "p.yaml", line: 3, column: 29, message: "'fingerprint': option kind 'x' is not 0-255 or '*'")) {
            try SYNPolicy(yaml: "rules:\n  - name: a\n    match: { fingerprint: \"1:x::\" }\n    action: deny\n", file: "p.yaml")
        }
        do {
            _ = try SYNPolicy(yaml: "rules:\n  - name: [a\n", file: "p.yaml")
            Issue.record("bad YAML accepted")
        } catch {
            #expect(error.file == "p.yaml" && error.line >= 2 && error.message.hasPrefix("YAML:"))
        }
    }
}
