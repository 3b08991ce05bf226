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

    public static func parse(_ bytes: [UInt8], linkLayer: LinkLayer = .none) throws(SYNParseError) -> SYNPacket {
        let h = try SYNHeaders.parse(bytes, linkLayer: linkLayer)
        return SYNPacket(headers: h, bytes: bytes)
    }

    /// The length of the IP + TCP headers at the start of `bytes` (as their own length fields say),
    /// nil when the bytes do not start with a parseable IPv4/IPv6 + TCP header (all zero: no SYN).
    public static func declaredHeaderLength(_ bytes: [UInt8]) -> Int? {
        guard let first = bytes.first, first >> 4 == 4 || first >> 4 == 6,
              let h = try? SYNHeaders.parse(bytes) else { return nil }
        return h.networkHeaderLength + h.tcpHeaderLength
    }
}

extension SYNPacket {
    /// The rich view of a parsed SYN: arrays for addresses, options and extension headers. `bytes`
    /// must be the buffer `headers` was parsed from (the MAC header and IPv6 extension headers are
    /// copied from it; everything else comes from `headers`).
    public init(headers h: SYNHeaders, bytes: [UInt8]) {
        macHeader = h.linkHeaderLength > 0 ? Array(bytes[0..<h.linkHeaderLength]) : nil
        payloadLength = h.payloadLength
        let ipAt = h.linkHeaderLength
        if h.ipVersion == 4 {
            var options: [IPv4Option] = []
            let o = h.ipv4Options
            var i = 0
            // Already checked by SYNHeaders: each length fits.
            while i < o.count {
                let kind = o[i]
                if kind == 0 { options.append(IPv4Option(kind: 0, data: [])); break }
                if kind == 1 { options.append(IPv4Option(kind: 1, data: [])); i += 1; continue }
                let len = Int(o[i + 1])
                options.append(IPv4Option(kind: kind, data: Array(o[(i + 2)..<(i + len)])))
                i += len
            }
            ip = .v4(IPv4Header(
                headerLength: h.networkHeaderLength, tos: h.tos, totalLength: h.ipLengthField, identification: h.ipID,
                reservedFlag: h.reservedFlag, dontFragment: h.dontFragment, ttl: h.ttl, protocolNumber: h.ipProtocol,
                checksum: h.ipChecksum, source: (0..<4).map { h.source[$0] }, destination: (0..<4).map { h.destination[$0] },
                optionBytes: Array(o), options: options))
        } else {
            var ext: [IPv6ExtensionHeader] = []
            var type = h.ipProtocol
            var cur = ipAt + 40
            // Already walked and checked by SYNHeaders: each header is there, the chain ends in TCP.
            while type != 6, cur + 1 < bytes.count,
                  let len = SYNHeaders.extensionHeaderLength(type: type, lengthByte: bytes[cur + 1]) {
                ext.append(IPv6ExtensionHeader(type: type, nextHeader: bytes[cur], bytes: Array(bytes[cur..<(cur + len)])))
                type = bytes[cur]
                cur += len
            }
            ip = .v6(IPv6Header(
                trafficClass: h.tos, flowLabel: h.flowLabel, payloadLength: h.ipLengthField, nextHeader: h.ipProtocol,
                hopLimit: h.ttl, source: (0..<16).map { h.source[$0] }, destination: (0..<16).map { h.destination[$0] },
                extensionHeaders: ext))
        }
        var options: [TCPOption] = []
        options.reserveCapacity(h.optionKinds.count)
        let o = h.tcpOptions
        for n in 0..<h.optionKinds.count {
            let at = Int(h.optionOffsets[n])
            let kind = h.optionKinds[n]
            let len = h.optionLength(at: n)
            let v = at + 2
            switch kind {
            case 0:
                var nonZero = false
                for j in (at + 1)..<o.count where o[j] != 0 { nonZero = true }
                options.append(.eol(trailing: o.count - at - 1, trailingNonZero: nonZero))
            case 1: options.append(.nop)
            case 2: options.append(.mss(UInt16(o[v]) << 8 | UInt16(o[v + 1])))
            case 3: options.append(.windowScale(o[v]))
            case 4: options.append(.sackPermitted)
            case 5:
                var blocks: [SACKBlock] = []
                var k = v
                while k < at + len {
                    blocks.append(SACKBlock(left: SYNHeaders.be32(o, k), right: SYNHeaders.be32(o, k + 4)))
                    k += 8
                }
                options.append(.sack(blocks))
            case 8: options.append(.timestamp(SYNHeaders.be32(o, v), SYNHeaders.be32(o, v + 4)))
            case 34: options.append(.fastOpen(cookie: Array(o[v..<(at + len)]), experimental: false))
            case 254 where len >= 4 && o[v] == 0xf9 && o[v + 1] == 0x89:
                options.append(.fastOpen(cookie: Array(o[(v + 2)..<(at + len)]), experimental: true))
            case 30: options.append(.mptcp(subtype: o[v] >> 4, data: Array(o[v..<(at + len)])))
            default: options.append(.unknown(kind: kind, data: Array(o[v..<(at + len)])))
            }
        }
        tcp = TCPHeader(
            sourcePort: h.sourcePort, destinationPort: h.destinationPort, sequence: h.sequence,
            acknowledgment: h.acknowledgment, headerLength: h.tcpHeaderLength, reservedBits: h.tcpReservedBits,
            flags: h.flags, window: h.window, checksum: h.tcpChecksum, urgentPointer: h.urgentPointer,
            optionBytes: Array(o), options: options, optionError: h.optionError)
    }
}
