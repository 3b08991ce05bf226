import Testing
@testable import SocketFilter
import SockDiag

private func ast(_ s: String) throws -> String {
    try SocketFilter.parse(s).description
}

@Suite struct ParserTests {
    @Test(arguments: [
        // precedence: ss groups and/or left to right with equal precedence; implicit and between terms
        ("sport = :1 or sport = :2 and sport = :3", "(and (or [sport = 1] [sport = 2]) [sport = 3])"),
        ("sport = :1 and sport = :2 or sport = :3", "(or (and [sport = 1] [sport = 2]) [sport = 3])"),
        ("sport = :1 || sport = :2 && sport = :3", "(and (or [sport = 1] [sport = 2]) [sport = 3])"),
        ("sport = :1 | sport = :2 & sport = :3", "(and (or [sport = 1] [sport = 2]) [sport = 3])"),
        ("sport = :1 or ( sport = :2 and sport = :3 )", "(or [sport = 1] (and [sport = 2] [sport = 3]))"),
        ("(sport = :1 or sport = :2) sport = :3", "(and (or [sport = 1] [sport = 2]) [sport = 3])"),
        ("sport = :1 or sport = :2 sport = :3", "(and (or [sport = 1] [sport = 2]) [sport = 3])"),
        ("! sport = :1 and dport = :2", "(and (not [sport = 1]) [dport = 2])"),
        ("not not autobound", "(not (not [autobound]))"),
        ("!(sport = :22 or dport = :22)", "(not (or [sport = 22] [dport = 22]))"),
        ("!autobound", "(not [autobound])"),
        // hosts
        ("dst 10.0.0.0/8", "[dst 10.0.0.0/8]"),
        ("src 10.0.0.1", "[src 10.0.0.1/32]"),
        ("src 10.0.0.1:80", "[src 10.0.0.1/32 port 80]"),
        ("dst [::1]:443", "[dst ::1/128 port 443]"),
        ("dst [2001:db8::/32]:443", "[dst 2001:db8::/32 port 443]"),
        ("src ::1", "[src ::1/128]"),
        ("src fe80::/10", "[src fe80::/10]"),
        ("src ::ffff:10.0.0.1", "[src ::ffff:10.0.0.1/128]"),
        ("dst *", "[dst *]"),
        ("dst *:80", "[dst * port 80]"),
        ("src :22", "[src * port 22]"),
        ("src = 10.0.0.1", "[src 10.0.0.1/32]"),
        ("src 192.168.0.0/255.255.0.0", "[src 192.168.0.0/16]"),
        ("dst 10.1", "[dst 10.1.0.0/32]"),
        ("dst any", "[dst *]"),
        ("src /run/foo.sock", "[src unix:/run/foo.sock]"),
        ("src unix:/tmp/*", "[src unix:/tmp/*]"),
        ("src @abstract*", "[src unix:@abstract*]"),
        ("src 127.0.0.1:ssh", "[src 127.0.0.1/32 port 22]"),
        // ports and operators
        ("dport = :80", "[dport = 80]"),
        ("dport == 80", "[dport = 80]"),
        ("dport eq :80", "[dport = 80]"),
        ("dport :80", "[dport = 80]"),
        ("dport != :80", "[dport != 80]"),
        ("dport neq :80", "[dport != 80]"),
        ("sport > :1024", "[sport > 1024]"),
        ("sport gt 1024", "[sport > 1024]"),
        ("sport >= :1024", "[sport >= 1024]"),
        ("sport ge :1024", "[sport >= 1024]"),
        ("sport < 10", "[sport < 10]"),
        ("sport lt 10", "[sport < 10]"),
        ("sport <= 10", "[sport <= 10]"),
        ("sport le 10", "[sport <= 10]"),
        ("dport>=1024", "[dport >= 1024]"),
        ("dport =0x50", "[dport = 80]"),
        ("dport = https", "[dport = 443]"),
        // others
        ("dev lo", "[dev lo]"),
        ("dev != 2", "(not [dev 2])"),
        ("fwmark 0x10/0xff", "[fwmark 0x10/0xff]"),
        ("fwmark = 16", "[fwmark 0x10/0xffffffff]"),
        ("fwmark != 0x1", "(not [fwmark 0x1/0xffffffff])"),
        ("cgroup /system.slice", "[cgroup /system.slice]"),
        ("cgroup != /a", "(not [cgroup /a])"),
        ("autobound", "[autobound]"),
        ("uid 1000", "[uid = 1000]"),
        ("uid >= 1000", "[uid >= 1000]"),
        ("uid 1000-2000", "[uid 1000-2000]"),
        ("uid root", "[uid = 0]"),
        ("pid 42", "[pid 42]"),
        ("comm nginx*", "[comm nginx*]"),
        ("comm != sshd", "(not [comm sshd])"),
        ("cookie 0x1234", "[cookie 4660]"),
        // state selectors set the mask, they are not terms
        ("state established", "states=0x2 (true)"),
        ("state established state listening dport = :80", "states=0x402 [dport = 80]"),
        ("exclude listening", "states=0x1bff (true)"),
        ("state connected exclude syn-sent", "states=0x1b7b (true)"),
        ("dport = :80 state time-wait", "states=0x40 [dport = 80]"),
        ("state bucket", "states=0x48 (true)"),
        ("state big", "states=0x1fb7 (true)"),
        ("state synchronized", "states=0x1b7b (true)"),
        ("state all", "states=0x1fff (true)"),
        ("state Closed", "states=0x80 (true)"),
    ])
    func golden(_ input: String, _ expected: String) throws {
        #expect(try ast(input) == expected, "\(input)")
    }

    @Test func emptyFilter() throws {
        let f = try SocketFilter.parse("")
        #expect(f.isEmpty)
        #expect(f.stateMask == nil)
        #expect(try !SocketFilter.parse("state all").isEmpty)
    }

    @Test func needsProcesses() throws {
        #expect(try SocketFilter.parse("dport = :80 or comm ssh*").needsProcesses)
        #expect(try SocketFilter.parse("not pid 1").needsProcesses)
        #expect(try !SocketFilter.parse("uid 0 and dport = :80").needsProcesses)
    }

    @Test func families() throws {
        #expect(try SocketFilter.parse("dst [::1]:80").families == [10, 1])
        #expect(try SocketFilter.parse("dst 10.0.0.1").families == nil)  // v4 also matches v4-mapped v6
        #expect(try SocketFilter.parse("dport = :80").families == nil)
    }

    @Test(arguments: [
        ("dport =", 8, "", "expected a port after 'dport ='"),
        ("dport = :http2x", 9, ":http2x", "expected a port after 'dport ='"),
        ("src", 4, "", "expected an address after 'src'"),
        ("src 10.0.0.300", 5, "10.0.0.300", "an inet prefix is expected"),
        ("sport = :1 or", 14, "", "expected a term after 'or'"),
        ("and sport = :1", 1, "and", "expected a term before 'and'"),
        ("sport = :1 or and dport = :2", 15, "and", "expected a term after 'or'"),
        ("( sport = :1", 13, "", "missing ')'"),
        ("sport = :1 )", 12, ")", "unmatched ')'"),
        ("( )", 3, ")", "empty parentheses"),
        ("state establishd", 7, "establishd", "unknown state 'establishd'"),
        ("( state established )", 3, "state", "cannot be inside parentheses"),
        ("sport = :1 or state listening", 15, "state", "'state' cannot follow 'or'"),
        ("foo = 3", 1, "foo", "unknown term 'foo'"),
        ("fwmark 0x10/zz", 8, "0x10/zz", "expected a mark"),
        ("dport = 70000", 9, "70000", "expected a port after 'dport ='"),
        ("uid 5-2", 5, "5-2", "empty uid range"),
        ("pid x", 5, "x", "expected a process id"),
        ("dev < 3", 5, "<", "only takes '=' or '!='"),
        ("src 10.0.0.1:99999", 5, "10.0.0.1:99999", "does not look like a port"),
        ("not", 4, "", "expected a term after 'not'"),
    ])
    func errors(_ input: String, _ column: Int, _ token: String, _ message: String) {
        do {
            _ = try SocketFilter.parse(input)
            Issue.record("\(input) parsed")
        } catch let e as FilterSyntaxError {
            #expect(e.column == column, "\(input): \(e)")
            #expect(e.token == token, "\(input): \(e)")
            #expect(e.message.contains(message), "\(input): \(e.message)")
            // the rendering: message, the text, a caret under the column
            let lines = e.description.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(lines.count == 3)
            #expect(lines[1] == "  " + input)
            #expect(lines[2] == "  " + String(repeating: " ", count: column - 1) + "^")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func caretRendering() {
        do {
            _ = try SocketFilter.parse("dport = :80 and dport =")
        } catch let e as FilterSyntaxError {
            #expect(e.description == """
                filter error at column 24: expected a port after 'dport ='
                  dport = :80 and dport =
                                         ^
                """)
        } catch { Issue.record("\(error)") }
    }
}
