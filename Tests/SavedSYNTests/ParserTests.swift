import Foundation
@testable import SavedSYN
import Testing

func hex(_ s: String) -> [UInt8] {
    let c = Array(s.filter { !$0.isWhitespace })
    return stride(from: 0, to: c.count, by: 2).map { UInt8(String(c[$0...$0 + 1]), radix: 16)! }
}

/// Golden bytes: a Linux 6.18 SYN over a 1500-MTU veth as TCP_SAVED_SYN returned it.
let linuxSYN = hex("""
    45 00 00 3c 44 44 40 00 40 06 e1 db 0a 4d 00 01 0a 4d 00 02
    9c 46 13 89 0c 5c 7f d1 00 00 00 00 a0 02 fa f0 73 23 00 00
    02 04 05 b4 04 02 08 0a 19 3d 70 15 00 00 00 00 01 03 03 07
    """)

/// IPv6 SYN with a destination-options extension header (8 bytes) before TCP.
let ipv6ExtSYN = hex("""
    60 01 23 45 00 30 3c 40
    fd 77 00 00 00 00 00 00 00 00 00 00 00 00 00 01
    fd 77 00 00 00 00 00 00 00 00 00 00 00 00 00 02
    06 00 01 04 00 00 00 00
    9c 50 13 8a 36 f6 75 cd 00 00 00 00 a0 02 fd 20 00 4d 00 00
    02 04 05 a0 04 02 08 0a 3d 00 b6 15 00 00 00 00 01 03 03 07
    """)

struct ParserTests {
    @Test func goldenIPv4SYN() throws {
        let p = try SYNParser.parse(linuxSYN)
        guard case let .v4(ip) = p.ip else { Issue.record("not IPv4"); return }
        #expect(ip.headerLength == 20 && ip.totalLength == 60 && ip.identification == 0x4444)
        #expect(ip.dontFragment && !ip.reservedFlag && ip.ttl == 64 && ip.tos == 0)
        #expect(p.ip.sourceString == "10.77.0.1" && p.ip.destinationString == "10.77.0.2")
        #expect(p.tcp.sourcePort == 40006 && p.tcp.destinationPort == 5001)
        #expect(p.tcp.sequence == 0x0c5c7fd1 && p.tcp.flags == .syn && p.tcp.window == 64240)
        #expect(p.tcp.options == [.mss(1460), .sackPermitted, .timestamp(0x193d7015, 0), .nop, .windowScale(7)])
        #expect(p.tcp.optionError == nil && p.payloadLength == 0)
        let fp = try SYNFingerprint(bytes: linuxSYN)
        #expect(fp.signature == "4:64+0:0:1460:mss*44,7:mss,sok,ts,nop,ws:df,id+:0")
        #expect(fp.fingerprint == "64240:2-4-8-1-3:1460:7")
        #expect(fp.facts.initialTTL == 64 && fp.facts.distance == 0 && fp.facts.timestamps && !fp.facts.fastOpen)
    }

    @Test func goldenIPv6WithExtensionHeader() throws {
        let p = try SYNParser.parse(ipv6ExtSYN)
        guard case let .v6(ip) = p.ip else { Issue.record("not IPv6"); return }
        #expect(ip.flowLabel == 0x12345 && ip.hopLimit == 64 && ip.trafficClass == 0 && ip.payloadLength == 48)
        #expect(ip.extensionHeaders == [IPv6ExtensionHeader(type: 60, nextHeader: 6, bytes: hex("06 00 01 04 00 00 00 00"))])
        #expect(p.ip.sourceString == "fd77::1")
        #expect(p.tcp.mss == 1440)
        #expect(try SYNFingerprint(bytes: ipv6ExtSYN).signature == "6:64+0:8:1440:mss*45,7:mss,sok,ts,nop,ws:flow:0")
    }

    @Test func macHeaderIsSkipped() throws {
        let withMAC = [UInt8](repeating: 0, count: 12) + [0x08, 0x00] + linuxSYN
        let p = try SYNParser.parse(withMAC, linkLayer: .ethernet)
        #expect(p.macHeader?.count == 14)
        #expect(p.tcp.sourcePort == 40006)
        #expect(throws: SYNParseError(.unknownEtherType(0x0806), at: 12)) {
            try SYNParser.parse([UInt8](repeating: 0, count: 12) + [0x08, 0x06] + linuxSYN, linkLayer: .ethernet)
        }
    }

    // MARK: errors: each names the problem and the byte

    @Test func truncatedEverywhere() {
        // Every prefix fails with "truncated", never a crash, at the header it cuts.
        for n in 0..<linuxSYN.count {
            do {
                _ = try SYNParser.parse(Array(linuxSYN.prefix(n)))
                Issue.record("prefix \(n) parsed")
            } catch {
                guard case let .truncated(what, _, _) = error.kind else { Issue.record("prefix \(n): \(error)"); continue }
                #expect(what.hasPrefix(n < 20 ? "IP" : "TCP"), "prefix \(n): \(error)")
                #expect(error.offset == (n == 0 ? 0 : n < 20 ? 0 : 20))
            }
        }
        for n in 0..<ipv6ExtSYN.count {
            #expect(throws: SYNParseError.self) { try SYNParser.parse(Array(ipv6ExtSYN.prefix(n))) }
        }
    }

    @Test func inconsistentAndOversizedHeaders() {
        var b = linuxSYN
        b[0] = 0x44  // IHL 4 words
        #expect(throws: SYNParseError(.ipv4HeaderTooShort(ihlBytes: 16), at: 0)) { try SYNParser.parse(b) }
        b = linuxSYN
        b[0] = 0x4f  // IHL 60 bytes: more than the buffer holds before TCP would start
        #expect(throws: SYNParseError(.truncated(what: "IPv4 header with options", needed: 60, available: 50), at: 0)) {
            try SYNParser.parse(Array(b.prefix(50)))
        }
        b = linuxSYN
        b[2] = 0; b[3] = 30  // total length 30 < 20 + 20
        #expect(throws: SYNParseError(.inconsistentLength(what: "IPv4 total length", declared: 30, minimum: 40), at: 2)) {
            try SYNParser.parse(b)
        }
        b = linuxSYN
        b[3] = 50  // total length 50: covers 40 but not the 40 bytes of TCP header
        #expect(throws: SYNParseError(.inconsistentLength(what: "IPv4 total length", declared: 50, minimum: 60), at: 2)) {
            try SYNParser.parse(b)
        }
        b = linuxSYN
        b[0] = 0x55
        #expect(throws: SYNParseError(.unknownIPVersion(5), at: 0)) { try SYNParser.parse(b) }
        b = linuxSYN
        b[9] = 17
        #expect(throws: SYNParseError(.notTCP(protocol: 17), at: 9)) { try SYNParser.parse(b) }
        b = linuxSYN
        b[6] = 0x20  // MF
        #expect(throws: SYNParseError(.fragment, at: 6)) { try SYNParser.parse(b) }
        b = linuxSYN
        b[32] = 0x40  // TCP data offset 16
        #expect(throws: SYNParseError(.tcpHeaderTooShort(dataOffsetBytes: 16), at: 32)) { try SYNParser.parse(b) }
        b = linuxSYN
        b[32] = 0xf0  // TCP data offset 60: past the end of the saved bytes
        #expect(throws: SYNParseError(.truncated(what: "TCP header with options", needed: 60, available: 40), at: 20)) {
            try SYNParser.parse(b)
        }
        // IPv6: extension header longer than the buffer, payload length too small, ESP.
        var v6 = ipv6ExtSYN
        v6[41] = 9  // (9+1)*8 = 80 bytes
        #expect(throws: SYNParseError(.truncated(what: "IPv6 extension header 60", needed: 80, available: 48), at: 40)) {
            try SYNParser.parse(v6)
        }
        v6 = ipv6ExtSYN
        v6[5] = 20
        #expect(throws: SYNParseError(.inconsistentLength(what: "IPv6 payload length", declared: 20, minimum: 48), at: 4)) {
            try SYNParser.parse(v6)
        }
        v6 = ipv6ExtSYN
        v6[6] = 50
        #expect(throws: SYNParseError(.notTCP(protocol: 50), at: 6)) { try SYNParser.parse(v6) }
        // IPv4 option with a length past the option area.
        var o = hex("46 00 00 40 00 01 40 00 40 06 00 00 0a 00 00 01 0a 00 00 02 07 09 04 00") + Array(linuxSYN[20...])
        #expect(throws: SYNParseError(.badIPv4Option(kind: 7, length: 9), at: 20)) { try SYNParser.parse(o) }
        o[21] = 1
        #expect(throws: SYNParseError(.badIPv4Option(kind: 7, length: 1), at: 20)) { try SYNParser.parse(o) }
    }

    @Test func malformedTCPOptionsAreRecordedNotFatal() throws {
        // MSS with length 5.
        var b = linuxSYN
        b[41] = 5
        var p = try SYNParser.parse(b)
        #expect(p.tcp.optionError == TCPOptionError(optionKind: 2, kind: .badLength(5), offset: 40))
        #expect(p.tcp.options.isEmpty)
        // p0f reads it on, with the `bad` quirk, as p0f does.
        #expect(try SYNFingerprint(bytes: b).p0f.quirks.contains(.badOptions))
        // Window scale option running past the end.
        b = linuxSYN
        b[58] = 3; b[57] = 3; b[56] = 9  // kind 9 len 3 at 56 -> fine; make the last one long
        b[57] = 9
        p = try SYNParser.parse(b)
        #expect(p.tcp.optionError == TCPOptionError(optionKind: 9, kind: .pastEnd(length: 9, left: 4), offset: 56))
        #expect(p.tcp.options.count == 3)
        // Kind with no room for its length byte.
        b = linuxSYN
        b[59] = 0x22
        b[58] = 1; b[57] = 1; b[56] = 1
        p = try SYNParser.parse(b)
        #expect(p.tcp.optionError == TCPOptionError(optionKind: 0x22, kind: .missingLength, offset: 59))
        #expect(try SYNFingerprint(bytes: b).fingerprint == "64240:2-4-8-1-1-1-34:1460:")
    }

    @Test func everyOptionKindIsDecoded() throws {
        // SACK (one block), TFO with a 4-byte cookie, experimental TFO (kind 254, magic F989), MPTCP
        // MP_JOIN (subtype 1), an unknown kind 99 kept raw, NOP.
        let b = hex("""
            45 00 00 48 00 01 40 00 40 06 00 00 0a 00 00 01 0a 00 00 02
            9c 40 00 50 00 00 00 01 00 00 00 00 d0 02 ff ff 00 00 00 00
            05 0a 00 00 00 01 00 00 00 02  22 06 aa bb cc dd  fe 08 f9 89 11 22 33 44
            1e 04 10 01  63 03 7f  01
            """)
        let fp = try SYNFingerprint(bytes: b)
        #expect(fp.packet.tcp.options == [
            .sack([SACKBlock(left: 1, right: 2)]), .fastOpen(cookie: [0xaa, 0xbb, 0xcc, 0xdd], experimental: false),
            .fastOpen(cookie: [0x11, 0x22, 0x33, 0x44], experimental: true), .mptcp(subtype: 1, data: [0x10, 0x01]),
            .unknown(kind: 99, data: [0x7f]), .nop,
        ])
        #expect(fp.packet.tcp.optionError == nil)
        #expect(fp.facts.fastOpen && fp.facts.fastOpenCookie == [0xaa, 0xbb, 0xcc, 0xdd] && fp.facts.mptcp)
        #expect(!fp.facts.timestamps && !fp.facts.sackPermitted)
        #expect(fp.headers.mptcpSubtype == 1 && fp.headers.mss == nil && fp.headers.windowScale == nil)
        #expect(fp.fingerprint == "65535:5-34-254-30-99-1::")
        #expect(fp.signature == "4:64+0:0:0:65535,0:sack,?34,?254,?30,?99,nop:df,id+:0")
        // The packed MuonFP key tells fingerprints apart and is stable.
        let other = try SYNFingerprint(bytes: linuxSYN)
        #expect(fp.muonFP.key != other.muonFP.key)
        #expect(fp.muonFP.key == (try SYNFingerprint(bytes: b)).muonFP.key)
    }

    @Test func fastPathAgreesWithThePacketView() throws {
        // SYNHeaders from a raw buffer (the allocation-free path) and the array view built on it.
        for bytes in [linuxSYN, ipv6ExtSYN] {
            let h = try bytes.withUnsafeBytes { p in try SYNHeaders.parse(p) }
            let p = try SYNParser.parse(bytes)
            #expect(h.networkHeaderLength == p.ip.headerLength && h.tcpHeaderLength == p.tcp.headerLength)
            #expect(h.ttl == p.ip.ttl && h.window == p.tcp.window && h.mss == p.tcp.mss)
            #expect(Array(h.optionKinds) == p.tcp.options.map(\.kind))
            #expect(Array(h.tcpOptions) == p.tcp.optionBytes)
            #expect(P0fSignature(headers: h) == (try SYNFingerprint(bytes: bytes)).p0f)
            #expect(MuonFP(headers: h).description == (try SYNFingerprint(bytes: bytes)).fingerprint)
        }
        #expect(try SYNHeaders.parse(ipv6ExtSYN).extensionHeaderCount == 1)
    }

    @Test func eolPaddingAndQuirks() throws {
        // EOL with one non-zero byte after it that is not the last: opt+; as the last byte: p0f misses it.
        var b = linuxSYN
        b[56] = 0; b[57] = 0x11; b[58] = 0; b[59] = 0
        var fp = try SYNFingerprint(bytes: b)
        #expect(fp.signature == "4:64+0:0:1460:mss*44,0:mss,sok,ts,eol+3:df,id+,opt+:0")
        b[57] = 0; b[59] = 0x11
        fp = try SYNFingerprint(bytes: b)
        #expect(fp.signature == "4:64+0:0:1460:mss*44,0:mss,sok,ts,eol+3:df,id+:0")
        #expect(fp.packet.tcp.options.last == .eol(trailing: 3, trailingNonZero: true))
        #expect(fp.fingerprint == "64240:2-4-8-0:1460:")
        // TTL far from any initial TTL: "+?"; zero sequence, urgent pointer, push.
        b = linuxSYN
        b[8] = 200
        b[24] = 0; b[25] = 0; b[26] = 0; b[27] = 0
        b[33] = 0x0a  // SYN|PSH
        b[38] = 0; b[39] = 1
        fp = try SYNFingerprint(bytes: b)
        #expect(fp.signature == "4:200+?:0:1460:mss*44,7:mss,sok,ts,nop,ws:df,id+,seq-,uptr+,pushf+:0")
    }

    @Test func muonFPPatterns() throws {
        let fp = MuonFP(window: 64240, optionKinds: [2, 4, 8, 1, 3], mss: 1460, windowScale: 7)
        #expect(fp.description == "64240:2-4-8-1-3:1460:7")
        #expect(try MuonFPPattern("64240:2-4-8-1-3:1460:7").matches(fp))
        #expect(try MuonFPPattern("%:2-4-8-1-3:%:%").matches(fp))
        #expect(try MuonFPPattern("%:2-*-3:%:%").matches(fp))
        #expect(try !MuonFPPattern("%:4-*:%:%").matches(fp))
        #expect(try !MuonFPPattern("%:::").matches(fp))
        let scanner = MuonFP(window: 65535, optionKinds: [], mss: nil, windowScale: nil)
        #expect(scanner.description == "65535:::")
        #expect(try MuonFPPattern("%:::").matches(scanner))
        #expect(throws: MuonFPPattern.SyntaxError.self) { try MuonFPPattern("1:2:3") }
        #expect(throws: MuonFPPattern.SyntaxError(column: 7, message: "option kind 'x' is not 0-255 or '*'")) {
            try MuonFPPattern("65535:x::")
        }
    }
}

/// Inputs the libFuzzer target (Fuzz/SavedSYNFuzz.swift, scripts/fuzz-syn) stopped on, kept as files in
/// fuzz-regressions/ (first byte: link layer, bit 0 = Ethernet; then the saved-SYN bytes).
struct FuzzRegressionTests {
    static func input(_ name: String) throws -> (SYNParser.LinkLayer, [UInt8]) {
        let path = testsDirectory + "/fuzz-regressions/" + name
        let d = try #require(FileManager.default.contents(atPath: path), "\(path)")
        let b = [UInt8](d)
        return (b[0] & 1 == 1 ? .ethernet : .none, Array(b.dropFirst()))
    }

    @Test func everyRegressionInputParsesOrFailsCleanly() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: testsDirectory + "/fuzz-regressions")
        #expect(!names.isEmpty)
        for name in names {
            let (link, bytes) = try Self.input(name)
            do {
                let fp = try SYNFingerprint(bytes: bytes, linkLayer: link, database: BuiltinSignatures.database)
                #expect(fp.headers.tcpOffset + fp.headers.tcpHeaderLength <= bytes.count, "\(name)")
                #expect(!fp.signature.isEmpty && !fp.fingerprint.isEmpty, "\(name)")
            } catch {
                #expect(error.offset >= 0 && error.offset <= bytes.count, "\(name): \(error)")
            }
        }
    }

    /// Found by libFuzzer: an IPv6 SYN behind 272 bytes of extension headers. Its raw signature has
    /// olen 272, which p0f's database grammar (and so ours) refuses (olen <= 255): such a signature
    /// cannot be written in a p0f.fp file. p0f itself never fingerprints IPv6 with extension headers.
    /// The loader says so with file:line:column instead of accepting a value p0f would reject.
    @Test func ipv6ExtensionHeadersPast255BytesCannotBeAP0fSignature() throws {
        let (link, bytes) = try Self.input("ipv6-ext-olen-272")
        let fp = try SYNFingerprint(bytes: bytes, linkLayer: link)
        #expect(fp.headers.ipVersion == 6 && fp.headers.extensionHeaderCount > 1)
        #expect(fp.p0f.ipOptionsLength == 272)
        #expect(fp.signature.hasPrefix("6:14+18:272:"))
        let text = "classes = unix\n[tcp:request]\nlabel = s:unix:X:y\nsig = \(fp.signature)\n"
        #expect(throws: P0fDatabase.LoadError(file: "t.fp", line: 4, column: 15, message: "bogus IP option length 272")) {
            try P0fDatabase(text: text, origin: "t.fp")
        }
    }
}
