import Foundation
import TestSupport
import Testing
import SockDiag
@testable import SocketFilter

/// The Swift bytecode interpreter against the running kernel: for random filters over the fixture's
/// addresses, ports, interfaces and marks, the sockets the kernel returns for the compiled program are
/// exactly those the interpreter accepts among all sockets of the namespace.
@Suite(.serialized) struct KernelInterpreterTests {
    typealias RNG = SeededRNG

    static func term(_ r: inout RNG) -> String {
        let hosts = ["127.0.0.1", "127.0.0.0/8", "10.20.0.0/24", "10.20.0.2", "10.99.0.0/16", "0.0.0.0/0", "0.0.0.0",
                     "[::1]", "[fd20::/16]", "[fd20::2]", "[::ffff:127.0.0.1]", "[::ffff:127.0.0.0/104]", "[::]", "*", "[::/0]"]
        let ports = [22, 80, 443, 2222, 3000, 7000, 7002, 8080, 32768, 50000]
        switch r.next() % 8 {
        case 0, 1:
            let port = r.next() % 3 == 0 ? ":\(r.pick(ports))" : ""
            return "\(r.pick(["src", "dst"])) \(r.pick(hosts))\(port)"
        case 2, 3:
            return "\(r.pick(["sport", "dport"])) \(r.pick(["=", "!=", "<", "<=", ">", ">="])) :\(r.pick(ports))"
        case 4: return "dev \(r.pick(["lo", "vA"]))"
        case 5: return "fwmark \(r.pick(["0x10", "0x10/0xf0", "0", "0x11", "0x20/0x20", "0x30"]))"
        case 6: return r.pick(["uid 1234", "comm python3"])  // not in bytecode: the program over-approximates
        default: return "\(r.pick(["src", "dst"])) :\(r.pick(ports))"
        }
    }

    static func expr(_ r: inout RNG, _ depth: Int) -> String {
        if depth == 0 || r.next() % 3 == 0 { return term(&r) }
        switch r.next() % 4 {
        case 0: return "not " + expr(&r, depth - 1)
        case 1: return "( " + expr(&r, depth - 1) + " " + r.pick(["and", "or"]) + " " + expr(&r, depth - 1) + " )"
        default: return expr(&r, depth - 1) + " " + r.pick(["and", "or", ""]) + " " + expr(&r, depth - 1)
        }
    }

    @Test func interpreterMatchesKernel() throws {
        try FilterEquivalenceTests.withFixtureProcesses(tag: "ki\(getpid())") { ns in try check(ns) }
    }

    private func check(_ ns: NamespacePair) throws {
        let diag = try DiagSocket.open(in: ns.a)
        defer { close(diag.fd) }
        let ifindex = inNamespace(ns.a) { ["lo": if_nametoindex("lo"), "vA": if_nametoindex("vA")] } ?? [:]
        let context = FilterContext(resolveInterface: { ifindex[$0].flatMap { $0 == 0 ? nil : $0 } },
                                    resolveCgroup: { _ in nil })
        var everything: [UInt16: [Socket]] = [:]
        for family: UInt8 in [2, 10] {
            for proto: UInt8 in [6, 17] {
                everything[UInt16(family) << 8 | UInt16(proto)] =
                    try diag.inet(family: family, proto: proto, states: StateNames.all, bytecode: [])
            }
        }
        #expect(everything.values.map(\.count).reduce(0, +) > 40)

        var r = RNG(state: 0xC0FFEE)
        var programs = 0, selected = 0, rejected = 0
        for _ in 0..<250 {
            let text = Self.expr(&r, 3)
            let f = try SocketFilter.parse(text)
            for family: UInt8 in [2, 10] {
                let c = try f.compile(family: family, context: context)
                guard !c.bytecode.isEmpty else { continue }
                try BytecodeInterpreter.audit(c.bytecode)
                programs += 1
                for proto: UInt8 in [6, 17] {
                    let kernel = try diag.inet(family: family, proto: proto, states: StateNames.all, bytecode: c.bytecode)
                    let all = everything[UInt16(family) << 8 | UInt16(proto)]!
                    let ours = all.filter { BytecodeInterpreter.run(c.bytecode, on: DiagEntry(socket: $0, bindPortLocked: true)) }
                    selected += ours.count
                    rejected += all.count - ours.count
                    #expect(kernel.map(key).sorted() == ours.map(key).sorted(), "\(text) family \(family) proto \(proto)")
                }
            }
        }
        print("kernel-interpreter: \(programs) programs accepted by the kernel, \(selected) sockets selected, \(rejected) rejected, all as the interpreter says")
        #expect(programs > 300)
        #expect(selected > 1000 && rejected > 1000)
    }
}
