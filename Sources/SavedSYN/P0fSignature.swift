/// p0f v3 quirks (p0f 3.09b `docs/README` section 5), in the order p0f prints them.
public struct P0fQuirks: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let df = P0fQuirks(rawValue: 1 << 0)
    public static let nonZeroID = P0fQuirks(rawValue: 1 << 1)
    public static let zeroID = P0fQuirks(rawValue: 1 << 2)
    public static let ecn = P0fQuirks(rawValue: 1 << 3)
    public static let nonZeroMBZ = P0fQuirks(rawValue: 1 << 4)
    public static let flow = P0fQuirks(rawValue: 1 << 5)
    public static let zeroSeq = P0fQuirks(rawValue: 1 << 6)
    public static let nonZeroAck = P0fQuirks(rawValue: 1 << 7)
    public static let zeroAck = P0fQuirks(rawValue: 1 << 8)
    public static let nonZeroUrgPtr = P0fQuirks(rawValue: 1 << 9)
    public static let urg = P0fQuirks(rawValue: 1 << 10)
    public static let push = P0fQuirks(rawValue: 1 << 11)
    public static let zeroTS1 = P0fQuirks(rawValue: 1 << 12)
    public static let nonZeroTS2 = P0fQuirks(rawValue: 1 << 13)
    public static let optAfterEOLNonZero = P0fQuirks(rawValue: 1 << 14)
    public static let excessiveWScale = P0fQuirks(rawValue: 1 << 15)
    public static let badOptions = P0fQuirks(rawValue: 1 << 16)

    /// p0f's names, in its print order.
    public static let names: [(P0fQuirks, String)] = [
        (.df, "df"), (.nonZeroID, "id+"), (.zeroID, "id-"), (.ecn, "ecn"), (.nonZeroMBZ, "0+"), (.flow, "flow"),
        (.zeroSeq, "seq-"), (.nonZeroAck, "ack+"), (.zeroAck, "ack-"), (.nonZeroUrgPtr, "uptr+"), (.urg, "urgf+"),
        (.push, "pushf+"), (.zeroTS1, "ts1-"), (.nonZeroTS2, "ts2+"), (.optAfterEOLNonZero, "opt+"),
        (.excessiveWScale, "exws"), (.badOptions, "bad"),
    ]

    public var names: [String] { Self.names.compactMap { contains($0.0) ? $0.1 : nil } }
}

/// The facts p0f v3 reads from a SYN (its `struct packet_data` / `struct tcp_sig`), from which the raw
/// signature `ver:ittl:olen:mss:wsize,scale:olayout:quirks:pclass` is printed.
public struct P0fSignature: Equatable, Hashable, Sendable {
    public var ipVersion: Int
    /// Observed TTL / hop limit.
    public var ttl: UInt8
    /// IPv4 option bytes (p0f counts none for IPv6; we count the extension headers' bytes there, see
    /// `P0fSignature.init(packet:)`).
    public var ipOptionsLength: Int
    /// 0 when the SYN has no MSS option.
    public var mss: Int
    public var window: UInt16
    /// 0 when the SYN has no window scale option.
    public var windowScale: Int
    /// Option kinds in order, at most 24 (p0f's MAX_TCP_OPT).
    public var optionLayout: InlineBytes
    /// Bytes after EOL up to the end of the option area.
    public var eolPadding: Int
    public var quirks: P0fQuirks
    /// True when the IP length announces payload after the TCP header.
    public var hasPayload: Bool
    /// DSCP (TOS >> 2); p0f shows it in `params` as `tos:0x..`.
    public var tos: UInt8
    /// First timestamp value (0 without the option).
    public var ts1: UInt32
    /// Network + TCP header bytes (p0f's tot_hdr).
    public var totalHeaderLength: Int

    /// p0f's MAX_DIST: hop distances above it are not believed.
    public static let maxDistance = 35
    /// p0f's MAX_TCP_OPT.
    public static let maxOptions = 24

    /// Reads the facts the way p0f 3.09b's parse_packet() does, including its lenient option walk
    /// (a malformed option sets `bad` and stops, it is not an error) and two of its quirks of
    /// implementation, kept so that our raw signature equals p0f's byte for byte:
    /// - `ack+` is set only when bit 24 of the acknowledgment number is set (p0f ANDs the raw
    ///   network-order word with a boolean, which on little-endian hosts tests the first byte's low bit);
    /// - `opt+` is not set when the only non-zero byte after EOL is the last byte of the option area.
    /// p0f skips IPv6 packets with extension headers; for those we count the extension headers' length
    /// as `olen` (p0f never prints such a signature). Allocates nothing.
    public init(headers h: SYNHeaders) {
        var q: P0fQuirks = []
        ipVersion = h.ipVersion
        ttl = h.ttl
        tos = h.tos >> 2
        if h.tos & 0x03 != 0 { q.insert(.ecn) }
        if h.ipVersion == 4 {
            ipOptionsLength = h.networkHeaderLength - 20
            if h.reservedFlag { q.insert(.nonZeroMBZ) }
            if h.dontFragment {
                q.insert(.df)
                if h.ipID != 0 { q.insert(.nonZeroID) }
            } else if h.ipID == 0 {
                q.insert(.zeroID)
            }
            totalHeaderLength = h.networkHeaderLength
        } else {
            ipOptionsLength = h.networkHeaderLength - 40
            if h.flowLabel != 0 { q.insert(.flow) }
            totalHeaderLength = 40
        }
        totalHeaderLength += h.tcpHeaderLength
        window = h.window
        let f = h.flags
        if f.contains(.ece) || f.contains(.cwr) || f.contains(.ns) { q.insert(.ecn) }
        if h.sequence == 0 { q.insert(.zeroSeq) }
        if f.contains(.ack) {
            if h.acknowledgment == 0 { q.insert(.zeroAck) }
        } else if !f.contains(.rst) && (h.acknowledgment >> 24) & 1 != 0 {
            q.insert(.nonZeroAck)
        }
        if f.contains(.urg) {
            q.insert(.urg)
        } else if h.urgentPointer != 0 {
            q.insert(.nonZeroUrgPtr)
        }
        if f.contains(.psh) { q.insert(.push) }
        hasPayload = h.payloadLength > 0

        // p0f's option walk over the raw option bytes.
        let end = h.tcpOptions.count
        var i = 0
        var layout = InlineBytes()
        var eolPad = 0, mssV = 0, ws = 0
        var ts1V: UInt32 = 0
        var aborted = false
        h.tcpOptions.withUnsafeBytes { o in
            let isPlainSYN = f.intersection([.syn, .ack, .fin, .rst]) == .syn
            walk: while i < end && layout.count < Self.maxOptions {
                let kind = o[i]
                layout.append(kind)
                i += 1
                switch kind {
                case 0:
                    eolPad = end - i
                    while i < end {
                        let byte = o[i]
                        i += 1
                        if byte != 0 { break }
                    }
                    if i != end {
                        q.insert(.optAfterEOLNonZero)
                        i = end
                    }
                case 1:
                    break
                case 2:
                    if i + 3 > end { aborted = true; break walk }
                    if o[i] != 4 { q.insert(.badOptions) }
                    mssV = Int(o[i + 1]) << 8 | Int(o[i + 2])
                    i += 3
                case 3:
                    if i + 2 > end { aborted = true; break walk }
                    if o[i] != 3 { q.insert(.badOptions) }
                    ws = Int(o[i + 1])
                    if ws > 14 { q.insert(.excessiveWScale) }
                    i += 2
                case 4:
                    if i + 1 > end { aborted = true; break walk }
                    if o[i] != 2 { q.insert(.badOptions) }
                    i += 1
                case 5:
                    if i == end { aborted = true; break walk }
                    let len = Int(o[i])
                    if len < 10 || len > 34 || i - 1 + len > end { aborted = true; break walk }
                    i += len - 1
                case 8:
                    if i + 9 > end { aborted = true; break walk }
                    if o[i] != 10 { q.insert(.badOptions) }
                    ts1V = UInt32(o[i + 1]) << 24 | UInt32(o[i + 2]) << 16 | UInt32(o[i + 3]) << 8 | UInt32(o[i + 4])
                    if ts1V == 0 { q.insert(.zeroTS1) }
                    if isPlainSYN && (o[i + 5] | o[i + 6] | o[i + 7] | o[i + 8]) != 0 { q.insert(.nonZeroTS2) }
                    i += 9
                default:
                    if i == end { aborted = true; break walk }
                    let len = Int(o[i])
                    if len < 2 || len > 40 || i - 1 + len > end { aborted = true; break walk }
                    i += len - 1
                }
            }
        }
        if aborted || i != end { q.insert(.badOptions) }
        optionLayout = layout
        eolPadding = eolPad
        mss = mssV
        windowScale = ws
        ts1 = ts1V
        quirks = q
    }

    /// p0f's guess_dist(): distance to the next initial TTL of 32, 64, 128 or 255.
    public var guessedDistance: Int {
        let t = Int(ttl)
        if t <= 32 { return 32 - t }
        if t <= 64 { return 64 - t }
        if t <= 128 { return 128 - t }
        return 255 - t
    }

    /// The guessed initial TTL (32, 64, 128 or 255).
    public var guessedInitialTTL: Int { Int(ttl) + guessedDistance }

    /// p0f's detect_win_multi(): the window as a multiple of the MSS or MTU, or nil.
    public var windowMultiple: (multiplier: Int, ofMTU: Bool)? {
        let win = Int(window)
        guard win != 0, mss >= 100 else { return nil }
        func div(_ d: Int) -> Bool { d != 0 && win % d == 0 }
        let minTCP4 = 40, minTCP6 = 60
        if div(mss) { return (win / mss, false) }
        if ts1 != 0 && div(mss - 12) { return (win / (mss - 12), false) }
        if div(1500 - minTCP4) { return (win / (1500 - minTCP4), false) }
        if div(1500 - minTCP4 - 12) { return (win / (1500 - minTCP4 - 12), false) }
        if ipVersion == 6 {
            if div(1500 - minTCP6) { return (win / (1500 - minTCP6), false) }
            if div(1500 - minTCP6 - 12) { return (win / (1500 - minTCP6 - 12), false) }
        }
        if div(mss + minTCP4) { return (win / (mss + minTCP4), true) }
        if div(mss + totalHeaderLength) { return (win / (mss + totalHeaderLength), true) }
        if ipVersion == 6 && div(mss + minTCP6) { return (win / (mss + minTCP6), true) }
        if div(1500) { return (win / 1500, true) }
        return nil
    }

    /// The raw signature exactly as p0f 3.09b prints it as `raw_sig` for a SYN.
    public var rawSignature: String {
        ASCIIText.make { w in
            w.number(ipVersion)
            w.byte(UInt8(ascii: ":"))
            w.number(ttl)
            let dist = guessedDistance
            if dist > Self.maxDistance {
                w.text("+?")
            } else {
                w.byte(UInt8(ascii: "+"))
                w.number(dist)
            }
            w.byte(UInt8(ascii: ":"))
            w.number(ipOptionsLength)
            w.byte(UInt8(ascii: ":"))
            w.number(mss)
            w.byte(UInt8(ascii: ":"))
            if let m = windowMultiple {
                w.text(m.ofMTU ? "mtu*" : "mss*")
                w.number(m.multiplier)
            } else {
                w.number(window)
            }
            w.byte(UInt8(ascii: ","))
            w.number(windowScale)
            w.byte(UInt8(ascii: ":"))
            Self.writeLayout(optionLayout, eolPadding: eolPadding, to: &w)
            w.byte(UInt8(ascii: ":"))
            var first = true
            for (q, name) in P0fQuirks.names where quirks.contains(q) {
                if !first { w.byte(UInt8(ascii: ",")) }
                first = false
                for b in name.utf8 { w.byte(b) }
            }
            w.text(hasPayload ? ":+" : ":0")
        }
    }

    /// p0f's option-layout text: `mss,nop,ws,sok,ts`, `eol+N`, `?N` for other kinds.
    public var optionLayoutText: String { Self.layoutText(optionLayout, eolPadding: eolPadding) }

    /// p0f's option-layout text: `mss,nop,ws,sok,ts`, `eol+N`, `?N` for other kinds.
    static func layoutText<C: Collection>(_ layout: C, eolPadding: Int) -> String where C.Element == UInt8 {
        ASCIIText.make { writeLayout(layout, eolPadding: eolPadding, to: &$0) }
    }

    static func writeLayout<C: Collection>(_ layout: C, eolPadding: Int, to w: inout ASCIIText) where C.Element == UInt8 {
        var first = true
        for k in layout {
            if !first { w.byte(UInt8(ascii: ",")) }
            first = false
            switch k {
            case 0: w.text("eol+"); w.number(eolPadding)
            case 1: w.text("nop")
            case 2: w.text("mss")
            case 3: w.text("ws")
            case 4: w.text("sok")
            case 5: w.text("sack")
            case 8: w.text("ts")
            default: w.byte(UInt8(ascii: "?")); w.number(k)
            }
        }
    }
}
