import Testing
@testable import SocketFilter
import SockDiag
import TestSupport

/// Random filter text and random sockets over small pools, so that terms match often.
struct Generator {
    var rng: SeededRNG
    mutating func pick<T>(_ xs: [T]) -> T { rng.pick(xs) }
    mutating func chance(_ p: Double) -> Bool { Double(rng.next() % 1000) < p * 1000 }

    static let v4 = ["10.0.0.1", "10.0.0.2", "10.1.2.3", "127.0.0.1", "192.168.1.10", "0.0.0.0"]
    static let v6 = ["::1", "fd00::1", "fd00::2", "2001:db8::7", "::", "::ffff:10.0.0.1", "::ffff:127.0.0.1", "::ffff:192.168.1.10"]
    static let ports: [UInt16] = [0, 22, 80, 443, 1024, 8080, 40000, 55555]

    mutating func hostText() -> String {
        var port = ""
        if chance(0.3) { port = ":\(pick(Generator.ports))" }
        switch rng.next() % 7 {
        case 0: return "*" + port
        case 1: return port.isEmpty ? "*" : port
        case 2, 3:
            let a = pick(Generator.v4)
            let pfx = chance(0.5) ? "/\(pick([0, 8, 16, 24, 31, 32]))" : ""
            return a + pfx + port
        default:
            let a = pick(Generator.v6)
            let pfx = chance(0.5) ? "/\(pick([0, 16, 64, 96, 104, 120, 128]))" : ""
            return "[" + a + pfx + "]" + port
        }
    }

    mutating func term() -> String {
        switch rng.next() % 14 {
        case 0, 1: return "\(pick(["src", "dst"])) \(hostText())"
        case 2, 3, 4:
            return "\(pick(["sport", "dport"])) \(pick(["=", "!=", "<", "<=", ">", ">=", "eq", "gt", "le"])) :\(pick(Generator.ports))"
        case 5: return "dev \(pick(["lo", "veth0", "0", "3"]))"
        case 6: return "fwmark \(pick(["0x10", "0x10/0xf0", "0", "0x11/0xff", "1/1"]))"
        case 7: return "cgroup /test.slice"
        case 8: return "autobound"
        case 9: return pick(["uid 0", "uid 1000", "uid >= 1000", "uid 500-1500", "uid != 0"])
        case 10: return pick(["pid 100", "pid 200"])
        case 11: return pick(["comm ngin*", "comm sshd"])
        case 12: return pick(["cookie 7", "cookie 8"])
        default: return pick(["src unix:/tmp/x", "src /run/*"]) // unix-only patterns
        }
    }

    mutating func expr(depth: Int) -> String {
        if depth == 0 || chance(0.3) { return term() }
        switch rng.next() % 5 {
        case 0: return "not " + expr(depth: depth - 1)
        case 1: return "( " + expr(depth: depth - 1) + " )"
        default:
            let j = pick(["and", "or", "&&", "||", "", "&", "|"])
            return expr(depth: depth - 1) + (j.isEmpty ? " " : " \(j) ") + expr(depth: depth - 1)
        }
    }

    mutating func socket(family: UInt8) -> Socket {
        var s = Socket(family: family, kind: pick([.tcp, .udp]),
                       state: pick([.established, .listen, .timeWait, .synSent, .closeWait, .close, .finWait2]))
        let pool = family == 2 ? Generator.v4 : Generator.v6
        s.source = InetAddress(pick(pool))
        s.destination = InetAddress(pick(pool))
        s.sourcePort = pick(Generator.ports)
        s.destinationPort = pick(Generator.ports)
        s.interfaceIndex = pick([0, 1, 7, 3])
        s.mark = pick([nil, 0, 0x10, 0x11, 0x1f, 1])
        s.cgroupID = pick([nil, 0x1122_3344_5566_7788, 5])
        s.uid = pick([0, 1000, 1200, 65534])
        s.cookie = pick([7, 8, 9])
        s.processes = pick([[], [SocketProcess(pid: 100, comm: "nginx", fd: 3)], [SocketProcess(pid: 200, comm: "sshd", fd: 4)]])
        if s.state == .timeWait { s.mark = nil; s.cgroupID = nil }
        return s
    }
}

@Suite struct CrossCheckTests {
    /// evaluator(expr, s) == kernel-interpreter(bytecode, s) && residual(s), for every case where the
    /// kernel would be given that bytecode; every non-empty program passes the kernel's audit.
    @Test func evaluatorAgreesWithBytecodeAndResidual() throws {
        let seed: UInt64 = 0x5EED_F117
        var g = Generator(rng: SeededRNG(state: seed))
        var cases = 0, kernelRejected = 0, exactPrograms = 0
        for i in 0..<1500 {
            let text = g.expr(depth: 4)
            let f = try SocketFilter.parse(text)
            for family: UInt8 in [2, 10] {
                let c = try f.compile(family: family, context: testContext)
                if !c.bytecode.isEmpty { try BytecodeInterpreter.audit(c.bytecode) }
                if c.exact { exactPrograms += 1 }
                let resolved = try f.resolved(in: testContext)
                for _ in 0..<8 {
                    let s = g.socket(family: family)
                    let locked = !testContext.ephemeralPorts.contains(s.sourcePort)
                    let entry = DiagEntry(socket: s, bindPortLocked: locked)
                    let kernel = c.bytecode.isEmpty || BytecodeInterpreter.run(c.bytecode, on: entry)
                    if !kernel { kernelRejected += 1 }
                    let want = resolved.matches(s, ephemeralPorts: testContext.ephemeralPorts)
                    let got = kernel && c.matches(s)
                    #expect(want == got, "case \(i) seed \(seed) family \(family): \(text)\n  ast \(f)\n  socket \(s.source!):\(s.sourcePort) -> \(s.destination!):\(s.destinationPort) if=\(s.interfaceIndex) mark=\(String(describing: s.mark)) state=\(s.state)")
                    if c.matchesNothing { #expect(!want) }
                    cases += 1
                    if want != got { return }
                }
            }
        }
        #expect(cases == 24_000)
        // the generator must exercise both outcomes of the kernel program and exact compilations
        #expect(kernelRejected > 2000)
        #expect(exactPrograms > 300)
    }

    /// The kernel's v4-mapped rule: an IPv4 condition matches an IPv6 socket on ::ffff:a.b.c.d, and a
    /// v4-mapped condition matches only IPv6 sockets.
    @Test func v4MappedHandling() throws {
        var s6 = Socket(family: 10, kind: .tcp, state: .established)
        s6.source = InetAddress("::ffff:10.0.0.1"); s6.destination = InetAddress("::1")
        var s4 = Socket(family: 2, kind: .tcp, state: .established)
        s4.source = InetAddress("10.0.0.1"); s4.destination = InetAddress("127.0.0.1")
        for (expr, m6, m4) in [("src 10.0.0.0/8", true, true), ("src [::ffff:10.0.0.1]", true, false),
                               ("src 0.0.0.0/0", true, true), ("src [::/0]", true, false), ("src *", true, true)] {
            let f = try SocketFilter.parse(expr)
            #expect(f.matches(s6) == m6, "\(expr) v6")
            #expect(f.matches(s4) == m4, "\(expr) v4")
            let c6 = try f.compile(family: 10, context: testContext)
            #expect((c6.bytecode.isEmpty || BytecodeInterpreter.run(c6.bytecode, on: DiagEntry(socket: s6, bindPortLocked: true))) == m6)
        }
    }

    @Test func unixSockets() throws {
        var u = Socket(family: 1, kind: .stream, state: .listen)
        u.path = "/run/App.sock"; u.inode = 4242
        #expect(try SocketFilter.parse("src /run/*.sock").matches(u))
        #expect(try SocketFilter.parse("src /RUN/app.SOCK").matches(u))  // ss matches case-insensitively
        #expect(try !SocketFilter.parse("src /tmp/*").matches(u))
        #expect(try SocketFilter.parse("src *").matches(u))
        #expect(try !SocketFilter.parse("dst /run/*").matches(u))  // peer name unknown: ""
        #expect(try !SocketFilter.parse("src 10.0.0.1").matches(u))
        #expect(try SocketFilter.parse("sport = 4242").matches(u))  // ss: a unix socket's sport is its inode
        #expect(try !SocketFilter.parse("autobound").matches(u))
        u.path = "@0001f"
        #expect(try SocketFilter.parse("autobound").matches(u))
    }
}
