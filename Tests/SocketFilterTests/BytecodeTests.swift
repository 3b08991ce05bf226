import Testing
@testable import SocketFilter
import SockDiag

let testContext = FilterContext(
    resolveInterface: { ["lo": 1, "veth0": 7][$0] },
    resolveCgroup: { $0 == "/test.slice" ? 0x1122_3344_5566_7788 : nil },
    ephemeralPorts: 32768...60999)

func hex(_ b: [UInt8]) -> String {
    b.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}

@Suite struct BytecodeTests {
    /// Bytes captured from iproute2 ss 6.1 (`strace -e trace=sendmsg -e write=3 -xx ss -tan EXPR`, the
    /// AF_INET request's INET_DIAG_REQ_BYTECODE payload).
    @Test(arguments: [
        ("sport = :1 or sport = :2 and sport = :3",
         "07101400000000000100000000000000010414000710240000000000020000000000000007101400000000000300000000000000"),
        ("dport != :80", "0810140000000000500000000000000001040800"),
        ("dst 10.0.0.0/8", "0810140002080000ffffffff0a000000"),
        ("dport >= :1024 and dport <= :2048", "040814000000000405080c0000000008"),
        ("dport > :1024", "05080c000000000401040800"),
        ("sport < :100", "02080c000000640001040800"),
        ("not ( sport = :22 or dport = :22 )",
         "07101400000000001600000000000000010414000810140000000000160000000000000001040800"),
        ("fwmark 0x10/0xff", "0a0c100010000000ff000000"),
        ("dst *:443", "0810140000000000bb01000000000000"),
        ("src 192.168.0.0/255.255.0.0", "0710140002100000ffffffffc0a80000"),
        ("dst 10.1", "0810140002200000ffffffff0a010000"),
    ])
    func matchesSS(_ expr: String, _ ssBytes: String) throws {
        let c = try SocketFilter.parse(expr).compile(family: 2, context: testContext)
        #expect(hex(c.bytecode) == ssBytes, "\(expr)")
        #expect(c.exact)
        try BytecodeInterpreter.audit(c.bytecode)
    }

    /// Hand-checked against include/uapi/linux/inet_diag.h (ss cannot produce these).
    @Test func handChecked() throws {
        // IPv6 hostcond: family 10, prefix 128, port 22, 16 address bytes; yes = 28, no = 32 (end + 4)
        var c = try SocketFilter.parse("src [::1]:22").compile(family: 10, context: testContext)
        #expect(hex(c.bytecode) == "071c20000a8000001600000000000000000000000000000000000001")
        // dev: DEV_COND + u32 ifindex (ss does not compile dev)
        c = try SocketFilter.parse("dev veth0").compile(family: 2, context: testContext)
        #expect(hex(c.bytecode) == "09080c0007000000")
        // cgroup: CGROUP_COND + u64 id, little-endian
        c = try SocketFilter.parse("cgroup /test.slice").compile(family: 2, context: testContext)
        #expect(hex(c.bytecode) == "0d0c10008877665544332211")
        // a v6 address in the AF_INET dump can never match: the program rejects everything
        c = try SocketFilter.parse("dst [::1]").compile(family: 2, context: testContext)
        #expect(hex(c.bytecode) == "01040800")
        #expect(c.matchesNothing)
        // uncompilable term in positive position -> TRUE: only the port test is left, residual is uid
        c = try SocketFilter.parse("dport = :80 and uid 1000").compile(family: 2, context: testContext)
        #expect(hex(c.bytecode) == "08101400000000005000000000000000")
        #expect(!c.exact)
        #expect(c.residualDescription == "[uid = 1000]")
        // under negation an uncompilable term becomes FALSE: not(uid) -> not(false) = true; dport stays
        c = try SocketFilter.parse("dport = :80 or not uid 0").compile(family: 2, context: testContext)
        #expect(c.bytecode.isEmpty)  // (dport or true) = true: no bytecode, all residual
        #expect(c.residualDescription == "(or [dport = 80] (not [uid = 0]))")
        // exact when only kernel terms
        c = try SocketFilter.parse("dev lo or fwmark 1").compile(family: 10, context: testContext)
        #expect(c.exact)
        // unix: no bytecode, whole expression residual
        c = try SocketFilter.parse("src /tmp/*").compile(family: 1, context: testContext)
        #expect(c.bytecode.isEmpty && !c.exact)
    }

    /// ss sends only AUTO for `autobound` (`06040800`) and checks the ephemeral port range in
    /// userspace; AUTO alone also holds for accepted sockets, so we put the range in the kernel too:
    /// AUTO, S_GE 32768, S_LE 60999.
    @Test func autoboundCarriesThePortRange() throws {
        var c = try SocketFilter.parse("autobound").compile(family: 2, context: testContext)
        #expect(hex(c.bytecode) == "06041800" + "0208140000000080" + "03080c00000047ee")
        try BytecodeInterpreter.audit(c.bytecode)
        // ss: 06040800 01041800 07101400..5000.. 01041000 0a0c1000 05000000ffffffff; the same shape with
        // AUTO widened to the three-op test
        c = try SocketFilter.parse("! autobound & sport = :80 | fwmark = 5").compile(family: 2, context: testContext)
        #expect(hex(c.bytecode) == "06041800" + "0208140000000080" + "03080c00000047ee" + "01041800"
                + "07101400000000005000000000000000" + "01041000" + "0a0c100005000000ffffffff")
        try BytecodeInterpreter.audit(c.bytecode)
    }

    @Test func compileErrorsNameTheTerm() throws {
        let f = try SocketFilter.parse("dport = :80 and dev nosuch0")
        #expect(throws: FilterCompileError(term: "dev nosuch0", column: 17,
                                           message: "no network interface named 'nosuch0' in the target namespace")) {
            try f.compile(family: 2, context: testContext)
        }
        let g = try SocketFilter.parse("cgroup /nope")
        #expect(throws: FilterCompileError.self) { try g.compile(family: 2, context: testContext) }
    }

    @Test func auditRejectsBadPrograms() {
        func rejects(_ h: String) -> Bool {
            let bytes = stride(from: 0, to: h.count, by: 2).map {
                UInt8(h[h.index(h.startIndex, offsetBy: $0)..<h.index(h.startIndex, offsetBy: $0 + 2)], radix: 16)!
            }
            return (try? BytecodeInterpreter.audit(bytes)) == nil
        }
        #expect(!rejects("06040800"))
        #expect(rejects(""))                    // shorter than one op
        #expect(rejects("06040c00"))            // no beyond end + 4
        #expect(rejects("06040600"))            // no not a multiple of 4
        #expect(rejects("0f040800"))            // unknown op
        #expect(rejects("0810140002210000ffffffff0a000000"))  // IPv4 prefix 33
        #expect(rejects("0810140003080000ffffffff0a000000"))  // bad family
        #expect(rejects("08101400020800"))      // truncated
        #expect(rejects("0a081000100000"))      // markcond truncated
        #expect(rejects("0604080001040600"))    // second op: 'no' misaligned
        #expect(rejects("06040600" + "01040800")) // 'no' lands inside... misaligned first
        // 'no' lands in the middle of a hostcond (offset 8 of a 16-byte op)
        #expect(rejects("06040c00" + "0810140002080000ffffffff0a000000"))
        #expect(throws: BytecodeInterpreter.AuditError.permission(offset: 0)) {
            try BytecodeInterpreter.audit([10, 12, 16, 0, 1, 0, 0, 0, 255, 255, 255, 255], netAdmin: false)
        }
    }
}
