/// The headers of one SYN as the kernel saved them (`TCP_SAVED_SYN`): optional MAC header, the IPv4
/// or IPv6 header with its options or extension headers, and the TCP header with its options.
/// Never any payload: the kernel saves `mac_hdrlen + network_hdrlen + tcp_hdrlen` bytes.
public struct SYNPacket: Equatable, Sendable {
    /// The MAC header bytes when the listener used `TCP_SAVE_SYN` = 2.
    public var macHeader: [UInt8]?
    public var ip: IPHeader
    public var tcp: TCPHeader
    /// Payload bytes the IP length fields announce beyond the TCP header (a TFO SYN with data). The
    /// saved SYN does not hold them; this only says how many there were.
    public var payloadLength: Int
}

public enum IPHeader: Equatable, Sendable {
    case v4(IPv4Header)
    case v6(IPv6Header)

    /// IPv4 TTL or IPv6 hop limit.
    public var ttl: UInt8 {
        switch self {
        case let .v4(h): return h.ttl
        case let .v6(h): return h.hopLimit
        }
    }
    /// The two ECN bits of the TOS / traffic class byte.
    public var ecn: UInt8 {
        switch self {
        case let .v4(h): return h.tos & 0x03
        case let .v6(h): return h.trafficClass & 0x03
        }
    }
    public var version: Int {
        switch self {
        case .v4: return 4
        case .v6: return 6
        }
    }
    /// Source address as text (dotted quad or RFC 5952 IPv6).
    public var sourceString: String {
        switch self {
        case let .v4(h): return IPAddressText.v4(h.source)
        case let .v6(h): return IPAddressText.v6(h.source)
        }
    }
    public var destinationString: String {
        switch self {
        case let .v4(h): return IPAddressText.v4(h.destination)
        case let .v6(h): return IPAddressText.v6(h.destination)
        }
    }
    /// Bytes of the network header (options and extension headers included).
    public var headerLength: Int {
        switch self {
        case let .v4(h): return h.headerLength
        case let .v6(h): return 40 + h.extensionHeaders.reduce(0) { $0 + $1.bytes.count }
        }
    }
}

/// Mirrors `struct iphdr` (linux/ip.h).
public struct IPv4Header: Equatable, Sendable {
    /// IHL * 4.
    public var headerLength: Int
    /// The whole TOS byte: DSCP in the upper six bits, ECN in the lower two.
    public var tos: UInt8
    public var totalLength: UInt16
    public var identification: UInt16
    /// The reserved ("evil", must-be-zero) flag bit, 0x8000 of frag_off.
    public var reservedFlag: Bool
    /// IP_DF, 0x4000 of frag_off.
    public var dontFragment: Bool
    public var ttl: UInt8
    public var protocolNumber: UInt8
    public var checksum: UInt16
    /// Addresses in network byte order as four bytes each.
    public var source: [UInt8]
    public var destination: [UInt8]
    /// The option bytes (IHL*4 - 20), raw, and their parsed form.
    public var optionBytes: [UInt8]
    public var options: [IPv4Option]

    public var dscp: UInt8 { tos >> 2 }
}

/// One IPv4 option (RFC 791): EOL and NOP are single bytes, the rest type-length-value.
public struct IPv4Option: Equatable, Sendable {
    public var kind: UInt8
    /// Value bytes (after the type and length bytes); empty for EOL and NOP.
    public var data: [UInt8]
}

/// Mirrors `struct ipv6hdr` (linux/ipv6.h).
public struct IPv6Header: Equatable, Sendable {
    public var trafficClass: UInt8
    /// 20 bits.
    public var flowLabel: UInt32
    public var payloadLength: UInt16
    /// The first next-header value (of the fixed header).
    public var nextHeader: UInt8
    public var hopLimit: UInt8
    public var source: [UInt8]
    public var destination: [UInt8]
    public var extensionHeaders: [IPv6ExtensionHeader]
}

/// An IPv6 extension header stepped over on the way to TCP (hop-by-hop 0, routing 43, fragment 44,
/// destination options 60, authentication 51, mobility 135, HIP 139, shim6 140).
public struct IPv6ExtensionHeader: Equatable, Sendable {
    /// Its own type (the next-header value that announced it).
    public var type: UInt8
    /// The next-header value it carries.
    public var nextHeader: UInt8
    /// All of its bytes, the first two included.
    public var bytes: [UInt8]
}

/// TCP flag bits as in byte 13 of `struct tcphdr` (linux/tcp.h), plus the NS/AE bit (bit 0 of byte 12)
/// as 0x100.
public struct TCPFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
    public static let urg = TCPFlags(rawValue: 0x20)
    public static let ece = TCPFlags(rawValue: 0x40)
    public static let cwr = TCPFlags(rawValue: 0x80)
    /// RFC 3540 NS, now AE (accurate ECN).
    public static let ns = TCPFlags(rawValue: 0x100)
}

/// Mirrors `struct tcphdr` (linux/tcp.h) with its options.
public struct TCPHeader: Equatable, Sendable {
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var sequence: UInt32
    public var acknowledgment: UInt32
    /// doff * 4.
    public var headerLength: Int
    /// The three reserved bits between doff and NS (should be zero).
    public var reservedBits: UInt8
    public var flags: TCPFlags
    public var window: UInt16
    public var checksum: UInt16
    public var urgentPointer: UInt16
    /// The option area (headerLength - 20 bytes), raw.
    public var optionBytes: [UInt8]
    /// Options read in order until the end, an EOL, or the first malformed one.
    public var options: [TCPOption]
    /// Set when the option area is malformed; `options` holds what came before the problem.
    public var optionError: TCPOptionError?

    public var mss: UInt16? {
        for case let .mss(v) in options { return v }
        return nil
    }
    public var windowScale: UInt8? {
        for case let .windowScale(v) in options { return v }
        return nil
    }
    public var timestamp: (value: UInt32, echo: UInt32)? {
        for case let .timestamp(v, e) in options { return (v, e) }
        return nil
    }
}

/// One TCP option (IANA "TCP Option Kind Numbers").
public enum TCPOption: Equatable, Sendable {
    /// Kind 0. `trailing` is the number of bytes after it up to the end of the option area;
    /// `trailingNonZero` whether any of them is not zero.
    case eol(trailing: Int, trailingNonZero: Bool)
    /// Kind 1.
    case nop
    /// Kind 2, length 4.
    case mss(UInt16)
    /// Kind 3, length 3.
    case windowScale(UInt8)
    /// Kind 4, length 2.
    case sackPermitted
    /// Kind 5, length 2 + 8n: left/right edges.
    case sack([SACKBlock])
    /// Kind 8, length 10: TSval, TSecr.
    case timestamp(UInt32, UInt32)
    /// Kind 34 (RFC 7413), or kind 254 with the experimental magic 0xF989: the cookie (empty = request).
    case fastOpen(cookie: [UInt8], experimental: Bool)
    /// Kind 30 (RFC 8684): subtype (upper nibble of the first value byte) and the value bytes.
    case mptcp(subtype: UInt8, data: [UInt8])
    /// Any other kind, value bytes kept raw.
    case unknown(kind: UInt8, data: [UInt8])

    /// The option's kind number as on the wire.
    public var kind: UInt8 {
        switch self {
        case .eol: return 0
        case .nop: return 1
        case .mss: return 2
        case .windowScale: return 3
        case .sackPermitted: return 4
        case .sack: return 5
        case .timestamp: return 8
        case let .fastOpen(_, exp): return exp ? 254 : 34
        case .mptcp: return 30
        case let .unknown(k, _): return k
        }
    }
}

public struct SACKBlock: Equatable, Sendable {
    public var left: UInt32
    public var right: UInt32
}

/// Address formatting without Foundation's or libc's help (inet_ntop's output for these inputs).
enum IPAddressText {
    static func v4(_ b: [UInt8]) -> String {
        b.map { String($0) }.joined(separator: ".")
    }

    /// RFC 5952: lower case, leading zeros dropped, the longest run (>= 2) of zero groups as "::",
    /// the first one on a tie; IPv4-mapped addresses end in dotted quad, as inet_ntop prints them.
    static func v6(_ b: [UInt8]) -> String {
        guard b.count == 16 else { return "" }
        var groups = [UInt16](repeating: 0, count: 8)
        for i in 0..<8 { groups[i] = UInt16(b[2 * i]) << 8 | UInt16(b[2 * i + 1]) }
        var bestStart = -1, bestLen = 0, i = 0
        while i < 8 {
            if groups[i] == 0 {
                var j = i
                while j < 8 && groups[j] == 0 { j += 1 }
                if j - i > bestLen && j - i >= 2 { bestStart = i; bestLen = j - i }
                i = j
            } else { i += 1 }
        }
        let mapped = groups[0..<5].allSatisfy { $0 == 0 } && groups[5] == 0xffff
        let last = mapped ? 6 : 8
        var out = ""
        var k = 0
        while k < last {
            if k == bestStart {
                out += "::"
                k += bestLen
                continue
            }
            if !out.isEmpty && !out.hasSuffix(":") { out += ":" }
            out += String(groups[k], radix: 16)
            k += 1
        }
        if mapped {
            if !out.hasSuffix(":") { out += ":" }
            out += v4(Array(b[12..<16]))
        }
        return out
    }
}
