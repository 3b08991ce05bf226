/// The one SYN parser: reads saved-SYN bytes straight from memory into a fixed-size value, with no
/// arrays, strings or existentials per packet (option bytes, kinds and offsets are `InlineBytes`).
/// `P0fSignature(headers:)`, `MuonFP(headers:)` and `SYNFacts(headers:)` work from it without
/// allocating either. `SYNParser.parse` and `SYNFingerprint` build the richer `SYNPacket` on top of it.
///
/// The input is attacker-controlled: every length is checked against the bytes that are really there
/// before it is used; a bad one throws `SYNParseError` naming the problem and the byte offset (offsets
/// count from the start of the given buffer, MAC header included).
public struct SYNHeaders: Equatable, Sendable {
    // MARK: layout in the buffer

    /// Bytes of MAC header before the network header (0, 14, or 18 with an 802.1Q/802.1ad tag).
    public var linkHeaderLength: Int
    /// The ethertype when there is a MAC header (0x0800 or 0x86DD), else 0.
    public var etherType: UInt16
    /// 4 or 6.
    public var ipVersion: Int
    /// Network header bytes: IPv4 with options, or IPv6 with its extension headers.
    public var networkHeaderLength: Int
    /// Offset of the TCP header in the buffer.
    public var tcpOffset: Int { linkHeaderLength + networkHeaderLength }

    // MARK: IP

    /// IPv4 TOS byte or IPv6 traffic class: DSCP in the upper six bits, ECN in the lower two.
    public var tos: UInt8
    /// IPv4 TTL or IPv6 hop limit.
    public var ttl: UInt8
    /// IPv4 total length or IPv6 payload length, as the header says.
    public var ipLengthField: UInt16
    /// IPv4 identification (0 for IPv6).
    public var ipID: UInt16
    /// IPv4 flags and fragment offset word (0 for IPv6).
    public var fragmentWord: UInt16
    /// IPv4 protocol, or the IPv6 fixed header's next header.
    public var ipProtocol: UInt8
    /// IPv4 header checksum (0 for IPv6).
    public var ipChecksum: UInt16
    /// IPv6 flow label, 20 bits (0 for IPv4).
    public var flowLabel: UInt32
    /// Addresses in network byte order: IPv4 in the first four lanes.
    public var source: SIMD16<UInt8>
    public var destination: SIMD16<UInt8>
    /// IPv4 option bytes (up to 40), raw; checked to be a well-formed RFC 791 list.
    public var ipv4Options: InlineBytes
    /// How many IPv6 extension headers were stepped over (0 for IPv4).
    public var extensionHeaderCount: Int

    // MARK: TCP

    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var sequence: UInt32
    public var acknowledgment: UInt32
    /// doff * 4.
    public var tcpHeaderLength: Int
    /// The three reserved bits between doff and NS.
    public var tcpReservedBits: UInt8
    public var flags: TCPFlags
    public var window: UInt16
    public var tcpChecksum: UInt16
    public var urgentPointer: UInt16
    /// The TCP option area, raw (tcpHeaderLength - 20 bytes, at most 40).
    public var tcpOptions: InlineBytes
    /// Kind of each option read, in wire order (NOP and EOL included), up to an EOL, the end of the
    /// area, or the first malformed option (not included; see `optionError`).
    public var optionKinds: InlineBytes
    /// Where each of those options starts in `tcpOptions`.
    public var optionOffsets: InlineBytes
    /// Set when the option area is malformed; the options before it are kept.
    public var optionError: TCPOptionError?
    public var mss: UInt16?
    public var windowScale: UInt8?
    public var timestampValue: UInt32?
    public var timestampEcho: UInt32?
    public var sackPermitted: Bool
    /// Offset in `tcpOptions` of the TCP Fast Open cookie and its length (0 = cookie request).
    public var fastOpenCookieOffset: UInt8?
    public var fastOpenCookieLength: UInt8
    public var mptcpSubtype: UInt8?
    /// Bytes the IP length field announces after the TCP header (data on the SYN).
    public var payloadLength: Int

    // MARK: derived

    /// RFC 3540 / RFC 3168 bits of the IP header: ECT(0), ECT(1) or CE.
    @inlinable public var ecn: UInt8 { tos & 0x03 }
    /// The IPv4 reserved ("evil") flag.
    @inlinable public var reservedFlag: Bool { fragmentWord & 0x8000 != 0 }
    @inlinable public var dontFragment: Bool { fragmentWord & 0x4000 != 0 }
    public var fastOpen: Bool { fastOpenCookieOffset != nil }
    public var mptcp: Bool { mptcpSubtype != nil }

    /// Which link-layer header precedes the network header.
    public typealias LinkLayer = SYNParser.LinkLayer

    /// Most extension headers stepped over before giving up (a loop guard; real stacks send 0-2).
    public static let maxExtensionHeaders = 16

    // MARK: - parsing

    /// Parses the bytes of one saved SYN.
    public static func parse(_ p: UnsafeRawBufferPointer, linkLayer: LinkLayer = .none) throws(SYNParseError) -> SYNHeaders {
        var h = SYNHeaders()
        var cur = 0
        if case .ethernet = linkLayer {
            try need(p, 0, 14, "Ethernet header")
            var typeAt = 12
            var etherType = be16(p, typeAt)
            if etherType == 0x8100 || etherType == 0x88a8 {
                try need(p, 0, 18, "802.1Q-tagged Ethernet header")
                typeAt = 16
                etherType = be16(p, typeAt)
            }
            guard etherType == 0x0800 || etherType == 0x86dd else {
                throw SYNParseError(.unknownEtherType(etherType), at: typeAt)
            }
            h.etherType = etherType
            cur = typeAt + 2
        }
        h.linkHeaderLength = cur
        try need(p, cur, 1, "IP header")
        let version = p[cur] >> 4
        let declaredEnd: Int, lengthFieldAt: Int, base: Int
        let what: StaticString
        switch version {
        case 4:
            declaredEnd = try h.parseIPv4(p, at: cur)
            lengthFieldAt = cur + 2
            base = cur
            what = "IPv4 total length"
        case 6:
            declaredEnd = try h.parseIPv6(p, at: cur)
            lengthFieldAt = cur + 4
            base = cur + 40
            what = "IPv6 payload length"
        default:
            throw SYNParseError(.unknownIPVersion(version), at: cur)
        }
        let tcpAt = h.tcpOffset
        try h.parseTCP(p, at: tcpAt)
        let headersEnd = tcpAt + h.tcpHeaderLength
        if declaredEnd < headersEnd {
            throw SYNParseError(.inconsistentLength(what: what.description, declared: Int(h.ipLengthField),
                                                    minimum: headersEnd - base), at: lengthFieldAt)
        }
        h.payloadLength = declaredEnd - headersEnd
        return h
    }

    /// Parses a byte array (see `parse(_:linkLayer:)` for a buffer).
    public static func parse(_ bytes: [UInt8], linkLayer: LinkLayer = .none) throws(SYNParseError) -> SYNHeaders {
        // withUnsafeBytes is rethrows-untyped; carry the typed error out by hand.
        let r: Result<SYNHeaders, SYNParseError> = bytes.withUnsafeBytes { p in
            do throws(SYNParseError) { return .success(try parse(p, linkLayer: linkLayer)) } catch { return .failure(error) }
        }
        return try r.get()
    }

    /// A value with every field zero, filled in by `parse`.
    init() {
        linkHeaderLength = 0; etherType = 0; ipVersion = 0; networkHeaderLength = 0
        tos = 0; ttl = 0; ipLengthField = 0; ipID = 0; fragmentWord = 0; ipProtocol = 0; ipChecksum = 0; flowLabel = 0
        source = .zero; destination = .zero; ipv4Options = InlineBytes(); extensionHeaderCount = 0
        sourcePort = 0; destinationPort = 0; sequence = 0; acknowledgment = 0; tcpHeaderLength = 0; tcpReservedBits = 0
        flags = []; window = 0; tcpChecksum = 0; urgentPointer = 0
        tcpOptions = InlineBytes(); optionKinds = InlineBytes(); optionOffsets = InlineBytes(); optionError = nil
        mss = nil; windowScale = nil; timestampValue = nil; timestampEcho = nil; sackPermitted = false
        fastOpenCookieOffset = nil; fastOpenCookieLength = 0; mptcpSubtype = nil; payloadLength = 0
    }

    // MARK: IPv4

    /// Returns where the IP length field says the packet ends.
    mutating func parseIPv4(_ p: UnsafeRawBufferPointer, at start: Int) throws(SYNParseError) -> Int {
        try Self.need(p, start, 20, "IPv4 header")
        let ihl = Int(p[start] & 0x0f) * 4
        guard ihl >= 20 else { throw SYNParseError(.ipv4HeaderTooShort(ihlBytes: ihl), at: start) }
        try Self.need(p, start, ihl, "IPv4 header with options")
        let totalLength = Self.be16(p, start + 2)
        let fragOff = Self.be16(p, start + 6)
        let proto = p[start + 9]
        // Total length must at least cover the IP header and a minimal TCP header.
        if Int(totalLength) < ihl + 20 {
            throw SYNParseError(.inconsistentLength(what: "IPv4 total length", declared: Int(totalLength), minimum: ihl + 20),
                                at: start + 2)
        }
        if fragOff & 0x3fff != 0 { throw SYNParseError(.fragment, at: start + 6) }
        guard proto == 6 else { throw SYNParseError(.notTCP(protocol: proto), at: start + 9) }
        try Self.checkIPv4Options(p, from: start + 20, to: start + ihl)
        ipVersion = 4
        networkHeaderLength = ihl
        tos = p[start + 1]
        ipLengthField = totalLength
        ipID = Self.be16(p, start + 4)
        fragmentWord = fragOff
        ttl = p[start + 8]
        ipProtocol = proto
        ipChecksum = Self.be16(p, start + 10)
        for i in 0..<4 {
            source[i] = p[start + 12 + i]
            destination[i] = p[start + 16 + i]
        }
        ipv4Options = InlineBytes(p, from: start + 20, count: ihl - 20)
        return start + Int(totalLength)
    }

    /// RFC 791 option list: EOL ends it, NOP is one byte, the rest carry a length >= 2 that must fit.
    static func checkIPv4Options(_ p: UnsafeRawBufferPointer, from: Int, to end: Int) throws(SYNParseError) {
        var i = from
        while i < end {
            let kind = p[i]
            if kind == 0 { return }
            if kind == 1 { i += 1; continue }
            guard i + 1 < end else { throw SYNParseError(.badIPv4Option(kind: kind, length: 0), at: i) }
            let len = Int(p[i + 1])
            guard len >= 2, i + len <= end else { throw SYNParseError(.badIPv4Option(kind: kind, length: len), at: i) }
            i += len
        }
    }

    // MARK: IPv6

    /// Walks the extension headers to TCP. Returns where the payload length says the packet ends.
    mutating func parseIPv6(_ p: UnsafeRawBufferPointer, at start: Int) throws(SYNParseError) -> Int {
        try Self.need(p, start, 40, "IPv6 header")
        let word = Self.be32(p, start)
        let payloadLength = Self.be16(p, start + 4)
        var next = p[start + 6]
        var nextAt = start + 6
        var cur = start + 40
        var count = 0
        while next != 6 {
            guard Self.extensionHeaderLength(type: next, lengthByte: 0) != nil else {
                throw SYNParseError(.notTCP(protocol: next), at: nextAt)
            }
            if next == 51 {
                try Self.need(p, cur, 2, "IPv6 authentication header")
            } else if next != 44 {
                try Self.need(p, cur, 2, "IPv6 extension header", next)
            }
            let hdrLen = Self.extensionHeaderLength(type: next, lengthByte: next == 44 ? 0 : p[cur + 1])!
            guard count < Self.maxExtensionHeaders else {
                throw SYNParseError(.tooManyExtensionHeaders(Self.maxExtensionHeaders), at: cur)
            }
            try Self.need(p, cur, hdrLen, "IPv6 extension header", next)
            if next == 44 {
                // A fragment header on a SYN: only an atomic fragment (offset 0, no M flag) carries TCP.
                if Self.be16(p, cur + 2) & 0xfff9 != 0 { throw SYNParseError(.fragment, at: cur + 2) }
            }
            count += 1
            nextAt = cur
            next = p[cur]
            cur += hdrLen
        }
        ipVersion = 6
        networkHeaderLength = cur - start
        tos = UInt8((word >> 20) & 0xff)
        flowLabel = word & 0xfffff
        ipLengthField = payloadLength
        ipProtocol = p[start + 6]
        ttl = p[start + 7]
        for i in 0..<16 {
            source[i] = p[start + 8 + i]
            destination[i] = p[start + 24 + i]
        }
        extensionHeaderCount = count
        return start + 40 + Int(payloadLength)
    }

    /// The length of an extension header of `type` whose second byte is `lengthByte`; nil when `type`
    /// is not one we step over (hop-by-hop 0, routing 43, fragment 44, destination options 60,
    /// authentication 51, mobility 135, HIP 139, shim6 140).
    static func extensionHeaderLength(type: UInt8, lengthByte: UInt8) -> Int? {
        switch type {
        case 0, 43, 60, 135, 139, 140: return (Int(lengthByte) + 1) * 8
        case 44: return 8
        case 51: return (Int(lengthByte) + 2) * 4
        default: return nil
        }
    }

    // MARK: TCP

    mutating func parseTCP(_ p: UnsafeRawBufferPointer, at start: Int) throws(SYNParseError) {
        try Self.need(p, start, 20, "TCP header")
        let doff = Int(p[start + 12] >> 4) * 4
        guard doff >= 20 else { throw SYNParseError(.tcpHeaderTooShort(dataOffsetBytes: doff), at: start + 12) }
        try Self.need(p, start, doff, "TCP header with options")
        var f = TCPFlags(rawValue: UInt16(p[start + 13]))
        if p[start + 12] & 0x01 != 0 { f.insert(.ns) }
        sourcePort = Self.be16(p, start)
        destinationPort = Self.be16(p, start + 2)
        sequence = Self.be32(p, start + 4)
        acknowledgment = Self.be32(p, start + 8)
        tcpHeaderLength = doff
        tcpReservedBits = (p[start + 12] >> 1) & 0x07
        flags = f
        window = Self.be16(p, start + 14)
        tcpChecksum = Self.be16(p, start + 16)
        urgentPointer = Self.be16(p, start + 18)
        tcpOptions = InlineBytes(p, from: start + 20, count: doff - 20)
        readTCPOptions(UnsafeRawBufferPointer(rebasing: p[(start + 20)..<(start + doff)]), base: start + 20)
    }

    /// Reads the option area `o` (the bytes also copied to `tcpOptions`) in order. Fixed-size options
    /// must have their RFC length; a bad one stops the
    /// walk with `optionError`, as the kernel's tcp_parse_options() stops reading at one (the SYN is
    /// still accepted, so this is not a parse error). `base` turns option offsets into buffer offsets.
    mutating func readTCPOptions(_ o: UnsafeRawBufferPointer, base: Int) {
        let end = o.count
        var i = 0
        while i < end {
            let kind = o[i]
            if kind == 0 || kind == 1 {
                optionKinds.append(kind)
                optionOffsets.append(UInt8(i))
                if kind == 0 { return }
                i += 1
                continue
            }
            guard i + 1 < end else {
                optionError = TCPOptionError(optionKind: kind, kind: .missingLength, offset: base + i)
                return
            }
            let len = Int(o[i + 1])
            guard len >= 2 else {
                optionError = TCPOptionError(optionKind: kind, kind: .badLength(len), offset: base + i)
                return
            }
            guard i + len <= end else {
                optionError = TCPOptionError(optionKind: kind, kind: .pastEnd(length: len, left: end - i), offset: base + i)
                return
            }
            let v = i + 2
            var good = true
            switch kind {
            case 2:
                good = len == 4
                if good && mss == nil { mss = UInt16(o[v]) << 8 | UInt16(o[v + 1]) }
            case 3:
                good = len == 3
                if good && windowScale == nil { windowScale = o[v] }
            case 4:
                good = len == 2
                if good { sackPermitted = true }
            case 5:
                good = len >= 10 && (len - 2) % 8 == 0
            case 8:
                good = len == 10
                if good && timestampValue == nil {
                    timestampValue = Self.be32(o, v)
                    timestampEcho = Self.be32(o, v + 4)
                }
            case 34:
                good = len == 2 || (len >= 6 && len <= 18)
                if good && fastOpenCookieOffset == nil {
                    fastOpenCookieOffset = UInt8(v)
                    fastOpenCookieLength = UInt8(len - 2)
                }
            case 254 where len >= 4 && o[v] == 0xf9 && o[v + 1] == 0x89:
                if fastOpenCookieOffset == nil {
                    fastOpenCookieOffset = UInt8(v + 2)
                    fastOpenCookieLength = UInt8(len - 4)
                }
            case 30:
                good = len >= 3
                if good && mptcpSubtype == nil { mptcpSubtype = o[v] >> 4 }
            default:
                break
            }
            guard good else {
                optionError = TCPOptionError(optionKind: kind, kind: .badLength(len), offset: base + i)
                return
            }
            optionKinds.append(kind)
            optionOffsets.append(UInt8(i))
            i += len
        }
    }

    /// The length of the option at index `n` of `optionKinds` (1 for EOL/NOP; EOL's trailing bytes
    /// are not part of it).
    public func optionLength(at n: Int) -> Int {
        let k = optionKinds[n]
        return k <= 1 ? 1 : Int(tcpOptions[Int(optionOffsets[n]) + 1])
    }

    // MARK: - helpers

    @inline(__always)
    static func need(_ p: UnsafeRawBufferPointer, _ at: Int, _ n: Int, _ what: StaticString, _ type: UInt8? = nil) throws(SYNParseError) {
        if at + n > p.count {
            let name = type.map { "\(what) \($0)" } ?? what.description
            throw SYNParseError(.truncated(what: name, needed: n, available: max(0, p.count - at)), at: at)
        }
    }

    @inline(__always) static func be16(_ p: UnsafeRawBufferPointer, _ i: Int) -> UInt16 { UInt16(p[i]) << 8 | UInt16(p[i + 1]) }
    @inline(__always) static func be32(_ p: UnsafeRawBufferPointer, _ i: Int) -> UInt32 {
        UInt32(p[i]) << 24 | UInt32(p[i + 1]) << 16 | UInt32(p[i + 2]) << 8 | UInt32(p[i + 3])
    }
    @inline(__always) static func be32(_ b: InlineBytes, _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }
}
