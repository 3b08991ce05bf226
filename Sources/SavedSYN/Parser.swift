/// Parses saved-SYN bytes into a `SYNPacket`. Every length is checked against the bytes that are
/// really there; a bad one throws `SYNParseError` with the byte offset.
public enum SYNParser {
    /// Which link-layer header precedes the network header.
    public enum LinkLayer: Sendable {
        /// `TCP_SAVE_SYN` = 1: the buffer starts with the IP header.
        case none
        /// `TCP_SAVE_SYN` = 2 on an Ethernet-like device (also `lo`): 14 bytes, or 18 with an 802.1Q tag.
        case ethernet
    }

    /// Most extension headers we step over before giving up (a loop guard; real stacks send 0-2).
    static let maxExtensionHeaders = 16

    public static func parse(_ bytes: [UInt8], linkLayer: LinkLayer = .none) throws(SYNParseError) -> SYNPacket {
        var cur = 0
        var mac: [UInt8]? = nil
        if case .ethernet = linkLayer {
            try need(bytes, cur, 14, "Ethernet header")
            var typeAt = 12
            var etherType = be16(bytes, typeAt)
            if etherType == 0x8100 || etherType == 0x88a8 {
                try need(bytes, cur, 18, "802.1Q-tagged Ethernet header")
                typeAt = 16
                etherType = be16(bytes, typeAt)
            }
            guard etherType == 0x0800 || etherType == 0x86dd else {
                throw SYNParseError(.unknownEtherType(etherType), at: typeAt)
            }
            mac = Array(bytes[0..<(typeAt + 2)])
            cur = typeAt + 2
        }
        try need(bytes, cur, 1, "IP header")
        let version = bytes[cur] >> 4
        switch version {
        case 4:
            let (ip, tcpAt, declaredEnd) = try parseIPv4(bytes, at: cur)
            let tcp = try parseTCP(bytes, at: tcpAt)
            let payload = try payloadLength(declaredEnd: declaredEnd, tcpAt: tcpAt, tcp: tcp, lengthFieldAt: cur + 2,
                                            what: "IPv4 total length", declaredValue: Int(ip.totalLength),
                                            base: cur)
            return SYNPacket(macHeader: mac, ip: .v4(ip), tcp: tcp, payloadLength: payload)
        case 6:
            let (ip, tcpAt, declaredEnd) = try parseIPv6(bytes, at: cur)
            let tcp = try parseTCP(bytes, at: tcpAt)
            let payload = try payloadLength(declaredEnd: declaredEnd, tcpAt: tcpAt, tcp: tcp, lengthFieldAt: cur + 4,
                                            what: "IPv6 payload length", declaredValue: Int(ip.payloadLength),
                                            base: cur + 40)
            return SYNPacket(macHeader: mac, ip: .v6(ip), tcp: tcp, payloadLength: payload)
        default:
            throw SYNParseError(.unknownIPVersion(version), at: cur)
        }
    }

    /// The length of the IP + TCP headers at the start of `bytes` (as their own length fields say),
    /// nil when the bytes do not start with a parseable IPv4/IPv6 + TCP header (all zero: no SYN).
    public static func declaredHeaderLength(_ bytes: [UInt8]) -> Int? {
        guard let first = bytes.first, first >> 4 == 4 || first >> 4 == 6,
              let p = try? parse(bytes) else { return nil }
        return p.ip.headerLength + p.tcp.headerLength
    }

    // MARK: - IPv4

    static func parseIPv4(_ b: [UInt8], at start: Int) throws(SYNParseError) -> (IPv4Header, Int, Int) {
        try need(b, start, 20, "IPv4 header")
        let ihl = Int(b[start] & 0x0f) * 4
        guard ihl >= 20 else { throw SYNParseError(.ipv4HeaderTooShort(ihlBytes: ihl), at: start) }
        try need(b, start, ihl, "IPv4 header with options")
        let totalLength = be16(b, start + 2)
        let fragOff = be16(b, start + 6)
        let proto = b[start + 9]
        // Total length must at least cover the IP header and a minimal TCP header.
        if Int(totalLength) < ihl + 20 {
            throw SYNParseError(.inconsistentLength(what: "IPv4 total length", declared: Int(totalLength), minimum: ihl + 20),
                                at: start + 2)
        }
        if fragOff & 0x3fff != 0 { throw SYNParseError(.fragment, at: start + 6) }
        guard proto == 6 else { throw SYNParseError(.notTCP(protocol: proto), at: start + 9) }
        let optionBytes = Array(b[(start + 20)..<(start + ihl)])
        let options = try parseIPv4Options(b, from: start + 20, to: start + ihl)
        let h = IPv4Header(
            headerLength: ihl, tos: b[start + 1], totalLength: totalLength, identification: be16(b, start + 4),
            reservedFlag: fragOff & 0x8000 != 0, dontFragment: fragOff & 0x4000 != 0, ttl: b[start + 8],
            protocolNumber: proto, checksum: be16(b, start + 10),
            source: Array(b[(start + 12)..<(start + 16)]), destination: Array(b[(start + 16)..<(start + 20)]),
            optionBytes: optionBytes, options: options)
        return (h, start + ihl, start + Int(totalLength))
    }

    /// RFC 791 option list: EOL ends it, NOP is one byte, the rest carry a length >= 2 that must fit.
    static func parseIPv4Options(_ b: [UInt8], from: Int, to end: Int) throws(SYNParseError) -> [IPv4Option] {
        var out: [IPv4Option] = []
        var i = from
        while i < end {
            let kind = b[i]
            if kind == 0 { out.append(IPv4Option(kind: 0, data: [])); break }
            if kind == 1 { out.append(IPv4Option(kind: 1, data: [])); i += 1; continue }
            guard i + 1 < end else { throw SYNParseError(.badIPv4Option(kind: kind, length: 0), at: i) }
            let len = Int(b[i + 1])
            guard len >= 2, i + len <= end else { throw SYNParseError(.badIPv4Option(kind: kind, length: len), at: i) }
            out.append(IPv4Option(kind: kind, data: Array(b[(i + 2)..<(i + len)])))
            i += len
        }
        return out
    }

    // MARK: - IPv6

    static func parseIPv6(_ b: [UInt8], at start: Int) throws(SYNParseError) -> (IPv6Header, Int, Int) {
        try need(b, start, 40, "IPv6 header")
        let word = be32(b, start)
        let payloadLength = be16(b, start + 4)
        var next = b[start + 6]
        var nextAt = start + 6
        var cur = start + 40
        var ext: [IPv6ExtensionHeader] = []
        while next != 6 {
            let hdrLen: Int
            switch next {
            case 0, 43, 60, 135, 139, 140:
                try need(b, cur, 2, "IPv6 extension header \(next)")
                hdrLen = (Int(b[cur + 1]) + 1) * 8
            case 44:
                hdrLen = 8
            case 51:
                try need(b, cur, 2, "IPv6 authentication header")
                hdrLen = (Int(b[cur + 1]) + 2) * 4
            default:
                throw SYNParseError(.notTCP(protocol: next), at: nextAt)
            }
            guard ext.count < maxExtensionHeaders else {
                throw SYNParseError(.tooManyExtensionHeaders(maxExtensionHeaders), at: cur)
            }
            try need(b, cur, hdrLen, "IPv6 extension header \(next)")
            if next == 44 {
                // A fragment header on a SYN: only an atomic fragment (offset 0, no M flag) carries TCP.
                if be16(b, cur + 2) & 0xfff9 != 0 { throw SYNParseError(.fragment, at: cur + 2) }
            }
            ext.append(IPv6ExtensionHeader(type: next, nextHeader: b[cur], bytes: Array(b[cur..<(cur + hdrLen)])))
            nextAt = cur
            next = b[cur]
            cur += hdrLen
        }
        let h = IPv6Header(
            trafficClass: UInt8((word >> 20) & 0xff), flowLabel: word & 0xfffff, payloadLength: payloadLength,
            nextHeader: b[start + 6], hopLimit: b[start + 7],
            source: Array(b[(start + 8)..<(start + 24)]), destination: Array(b[(start + 24)..<(start + 40)]),
            extensionHeaders: ext)
        return (h, cur, start + 40 + Int(payloadLength))
    }

    // MARK: - TCP

    static func parseTCP(_ b: [UInt8], at start: Int) throws(SYNParseError) -> TCPHeader {
        try need(b, start, 20, "TCP header")
        let doff = Int(b[start + 12] >> 4) * 4
        guard doff >= 20 else { throw SYNParseError(.tcpHeaderTooShort(dataOffsetBytes: doff), at: start + 12) }
        try need(b, start, doff, "TCP header with options")
        var flags = TCPFlags(rawValue: UInt16(b[start + 13]))
        if b[start + 12] & 0x01 != 0 { flags.insert(.ns) }
        let (options, err) = parseTCPOptions(b, from: start + 20, to: start + doff)
        return TCPHeader(
            sourcePort: be16(b, start), destinationPort: be16(b, start + 2), sequence: be32(b, start + 4),
            acknowledgment: be32(b, start + 8), headerLength: doff, reservedBits: (b[start + 12] >> 1) & 0x07,
            flags: flags, window: be16(b, start + 14), checksum: be16(b, start + 16),
            urgentPointer: be16(b, start + 18), optionBytes: Array(b[(start + 20)..<(start + doff)]),
            options: options, optionError: err)
    }

    /// Reads TCP options in order. Fixed-size options must have their RFC length; a bad one stops the
    /// walk with an error value, as the kernel's tcp_parse_options() stops on one.
    static func parseTCPOptions(_ b: [UInt8], from: Int, to end: Int) -> ([TCPOption], TCPOptionError?) {
        var out: [TCPOption] = []
        var i = from
        while i < end {
            let kind = b[i]
            switch kind {
            case 0:
                var nonZero = false
                var j = i + 1
                while j < end { if b[j] != 0 { nonZero = true }; j += 1 }
                out.append(.eol(trailing: end - i - 1, trailingNonZero: nonZero))
                return (out, nil)
            case 1:
                out.append(.nop)
                i += 1
                continue
            default:
                break
            }
            guard i + 1 < end else { return (out, TCPOptionError(optionKind: kind, kind: .missingLength, offset: i)) }
            let len = Int(b[i + 1])
            guard len >= 2 else { return (out, TCPOptionError(optionKind: kind, kind: .badLength(len), offset: i)) }
            guard i + len <= end else {
                return (out, TCPOptionError(optionKind: kind, kind: .pastEnd(length: len, left: end - i), offset: i))
            }
            let v = i + 2
            let bad = TCPOptionError(optionKind: kind, kind: .badLength(len), offset: i)
            switch kind {
            case 2:
                guard len == 4 else { return (out, bad) }
                out.append(.mss(be16(b, v)))
            case 3:
                guard len == 3 else { return (out, bad) }
                out.append(.windowScale(b[v]))
            case 4:
                guard len == 2 else { return (out, bad) }
                out.append(.sackPermitted)
            case 5:
                guard len >= 10, (len - 2) % 8 == 0 else { return (out, bad) }
                var blocks: [SACKBlock] = []
                var k = v
                while k < i + len { blocks.append(SACKBlock(left: be32(b, k), right: be32(b, k + 4))); k += 8 }
                out.append(.sack(blocks))
            case 8:
                guard len == 10 else { return (out, bad) }
                out.append(.timestamp(be32(b, v), be32(b, v + 4)))
            case 34:
                guard len == 2 || (len >= 6 && len <= 18) else { return (out, bad) }
                out.append(.fastOpen(cookie: Array(b[v..<(i + len)]), experimental: false))
            case 254 where len >= 4 && be16(b, v) == 0xf989:
                out.append(.fastOpen(cookie: Array(b[(v + 2)..<(i + len)]), experimental: true))
            case 30:
                guard len >= 3 else { return (out, bad) }
                out.append(.mptcp(subtype: b[v] >> 4, data: Array(b[v..<(i + len)])))
            default:
                out.append(.unknown(kind: kind, data: Array(b[v..<(i + len)])))
            }
            i += len
        }
        return (out, nil)
    }

    // MARK: - helpers

    static func payloadLength(declaredEnd: Int, tcpAt: Int, tcp: TCPHeader, lengthFieldAt: Int, what: String,
                              declaredValue: Int, base: Int) throws(SYNParseError) -> Int {
        let headersEnd = tcpAt + tcp.headerLength
        if declaredEnd < headersEnd {
            throw SYNParseError(.inconsistentLength(what: what, declared: declaredValue, minimum: headersEnd - base),
                                at: lengthFieldAt)
        }
        return declaredEnd - headersEnd
    }

    @inline(__always)
    static func need(_ b: [UInt8], _ at: Int, _ n: Int, _ what: @autoclosure () -> String) throws(SYNParseError) {
        if at + n > b.count {
            throw SYNParseError(.truncated(what: what(), needed: n, available: max(0, b.count - at)), at: at)
        }
    }

    @inline(__always) static func be16(_ b: [UInt8], _ i: Int) -> UInt16 { UInt16(b[i]) << 8 | UInt16(b[i + 1]) }
    @inline(__always) static func be32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }
}
