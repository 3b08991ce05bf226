import Testing
import TestSupport
@testable import SocketFilter
import SockDiag

@Suite struct FuzzTests {
    /// Token soup and raw characters: the parser returns or throws a syntax error whose column lies
    /// inside the text (or just past its end); it never traps.
    @Test func parserNeverTraps() {
        var rng = SeededRNG(state: 0xF00D)
        let vocab = ["src", "dst", "sport", "dport", "=", "!=", "<", ">=", "(", ")", "!", "not", "and", "or", "&&",
                     "||", "10.0.0.1", "[::1]:80", ":22", "*", "/tmp/x", "dev", "lo", "fwmark", "0x10/0xff",
                     "state", "established", "exclude", "autobound", "uid", "1-5", "pid", "comm", "cookie", "cgroup",
                     "/a", "[", "]", ":", "\\", "::ffff:1.2.3.4", "10.0.0.0/8", "http", "70000", ""]
        var parsed = 0, rejected = 0
        for _ in 0..<5000 {
            var words: [String] = []
            for _ in 0..<Int(rng.next() % 8) {
                if rng.next() % 5 == 0 {
                    let chars = Array("()![]:/*=<>&| \\abc019.")
                    words.append(String((0..<Int(rng.next() % 6 + 1)).map { _ in chars[Int(rng.next() % UInt64(chars.count))] }))
                } else {
                    words.append(vocab[Int(rng.next() % UInt64(vocab.count))])
                }
            }
            let text = words.joined(separator: " ")
            do {
                _ = try SocketFilter.parse(text)
                parsed += 1
            } catch let e as FilterSyntaxError {
                rejected += 1
                #expect(e.column >= 1 && e.column <= text.count + 1, "\(text): column \(e.column)")
            } catch {
                Issue.record("\(text): unexpected \(error)")
            }
        }
        #expect(parsed > 300 && rejected > 300)
    }

    /// Random byte programs: whatever the audit accepts, the interpreter runs without trapping (as the
    /// kernel relies on inet_diag_bc_audit before inet_diag_bc_run).
    @Test func auditGuardsTheInterpreter() {
        var rng = SeededRNG(state: 0xA0D1)
        var accepted = 0
        var s = Socket(family: 10, kind: .tcp, state: .established)
        s.source = InetAddress("::ffff:10.0.0.1"); s.destination = InetAddress("fd00::1")
        let entry = DiagEntry(socket: s, bindPortLocked: false)
        for _ in 0..<200_000 {
            var bc: [UInt8] = []
            for _ in 0..<Int(rng.next() % 4 + 1) {
                let code = UInt8(rng.next() % 15)
                let len = [4, 8, 12, 16, 28][Int(rng.next() % 5)]
                let no = UInt16([4, 8, 12, 16, 20, 24, 28, 32, 6][Int(rng.next() % 9)])
                bc += [code, UInt8(len), UInt8(no & 0xFF), UInt8(no >> 8)]
                for _ in 4..<len { bc.append([0, 2, 10, 255, 8, 32][Int(rng.next() % 6)]) }
            }
            if (try? BytecodeInterpreter.audit(bc)) != nil {
                accepted += 1
                _ = BytecodeInterpreter.run(bc, on: entry)
            }
        }
        #expect(accepted > 100)
    }
}
