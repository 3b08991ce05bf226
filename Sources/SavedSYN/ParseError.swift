/// Why a saved SYN (or any IPv4/IPv6 + TCP header block) could not be parsed.
///
/// The input is attacker-controlled: every length field is checked before it is used, and a bad one
/// becomes one of these values, never a crash. `offset` is the byte offset into the buffer that was
/// given to the parser (the MAC header included when there is one) where the problem sits.
public struct SYNParseError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Hashable, Sendable {
        /// The buffer ends before `what` does: `needed` bytes from `offset`, only `available` there.
        case truncated(what: String, needed: Int, available: Int)
        /// The first nibble of the network header is neither 4 nor 6.
        case unknownIPVersion(UInt8)
        /// Ethernet header names an ethertype that is neither IPv4 (0x0800) nor IPv6 (0x86DD).
        case unknownEtherType(UInt16)
        /// IPv4 IHL below 5 words (20 bytes).
        case ipv4HeaderTooShort(ihlBytes: Int)
        /// A length field says less than the headers already seen (IPv4 total length, IPv6 payload length).
        case inconsistentLength(what: String, declared: Int, minimum: Int)
        /// An IPv4 option whose length byte is below 2 or runs past the end of the options.
        case badIPv4Option(kind: UInt8, length: Int)
        /// The packet is an IPv4 fragment (MF or a non-zero offset): no TCP header to read.
        case fragment
        /// IPv6 next header chain reaches something that is neither TCP nor an extension header we can
        /// step over (ESP, no-next-header, UDP...).
        case notTCP(protocol: UInt8)
        /// TCP data offset below 5 words.
        case tcpHeaderTooShort(dataOffsetBytes: Int)
        /// More extension headers than anyone sends (loop guard).
        case tooManyExtensionHeaders(Int)
    }

    public let kind: Kind
    /// Byte offset into the parsed buffer.
    public let offset: Int

    public init(_ kind: Kind, at offset: Int) {
        self.kind = kind
        self.offset = offset
    }

    public var description: String {
        switch kind {
        case let .truncated(what, needed, available):
            return "truncated \(what) at byte \(offset): needs \(needed) bytes, \(available) left"
        case let .unknownIPVersion(v):
            return "unknown IP version \(v) at byte \(offset) (expected 4 or 6)"
        case let .unknownEtherType(t):
            return "unknown ethertype 0x\(String(t, radix: 16)) at byte \(offset) (expected 0x800 or 0x86dd)"
        case let .ipv4HeaderTooShort(n):
            return "IPv4 header length \(n) at byte \(offset) is below the minimum of 20"
        case let .inconsistentLength(what, declared, minimum):
            return "\(what) \(declared) at byte \(offset) is smaller than the \(minimum) bytes of headers"
        case let .badIPv4Option(kind, length):
            return "IPv4 option \(kind) at byte \(offset) has invalid length \(length)"
        case .fragment:
            return "IPv4 fragment (MF set or non-zero fragment offset) at byte \(offset)"
        case let .notTCP(p):
            return "next header \(p) at byte \(offset) is not TCP"
        case let .tcpHeaderTooShort(n):
            return "TCP data offset \(n) at byte \(offset) is below the minimum of 20"
        case let .tooManyExtensionHeaders(n):
            return "more than \(n) IPv6 extension headers, stopped at byte \(offset)"
        }
    }
}

/// A problem inside the TCP option area. The kernel accepts SYNs whose options are malformed (it
/// stops reading options at the first bad length), so this does not make the whole parse fail: the
/// options read before it are kept and this is recorded in `TCPHeader.optionError`.
public struct TCPOptionError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Hashable, Sendable {
        /// The option's kind byte is the last byte of the option area: no room for its length.
        case missingLength
        /// The length byte is below 2, or does not fit the option's fixed size.
        case badLength(Int)
        /// The length byte runs past the end of the option area.
        case pastEnd(length: Int, left: Int)
    }
    public let optionKind: UInt8
    public let kind: Kind
    public let offset: Int

    public var description: String {
        switch kind {
        case .missingLength:
            return "TCP option \(optionKind) at byte \(offset) has no room for its length byte"
        case let .badLength(n):
            return "TCP option \(optionKind) at byte \(offset) has invalid length \(n)"
        case let .pastEnd(length, left):
            return "TCP option \(optionKind) at byte \(offset) has length \(length) but only \(left) bytes of options are left"
        }
    }
}
