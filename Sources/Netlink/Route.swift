/// rtnetlink (`NETLINK_ROUTE`) messages the policy daemon reads: addresses (`struct ifaddrmsg` +
/// `IFA_*`) and links (`struct ifinfomsg` + `IFLA_*`). Pure wire code: no syscalls.
public enum RouteConstants {
    /// `NETLINK_ROUTE`.
    public static let family: Int32 = 0
    /// `RTM_NEWLINK`, `RTM_DELLINK`, `RTM_GETLINK`.
    public static let newLink: UInt16 = 16
    public static let delLink: UInt16 = 17
    public static let getLink: UInt16 = 18
    /// `RTM_NEWADDR`, `RTM_DELADDR`, `RTM_GETADDR`.
    public static let newAddress: UInt16 = 20
    public static let delAddress: UInt16 = 21
    public static let getAddress: UInt16 = 22
    /// Multicast groups (`enum rtnetlink_groups`), joined with NETLINK_ADD_MEMBERSHIP.
    public static let groupLink: UInt32 = 1          // RTNLGRP_LINK
    public static let groupIPv4Address: UInt32 = 5  // RTNLGRP_IPV4_IFADDR
    public static let groupIPv6Address: UInt32 = 9  // RTNLGRP_IPV6_IFADDR
    /// `IFA_ADDRESS`, `IFA_LOCAL`, `IFA_LABEL`.
    public static let ifaAddress: UInt16 = 1
    public static let ifaLocal: UInt16 = 2
    public static let ifaLabel: UInt16 = 3
    /// `IFLA_IFNAME`.
    public static let iflaName: UInt16 = 3
    /// `IFF_UP`, `IFF_RUNNING` (RFC 2863 oper-up), `IFF_LOWER_UP`.
    public static let iffUp: UInt32 = 1 << 0
    public static let iffRunning: UInt32 = 1 << 6
    public static let iffLowerUp: UInt32 = 1 << 16
}

/// An address event or dump entry: `struct ifaddrmsg` (8 bytes: family, prefixlen, flags, scope,
/// index) and its `IFA_LOCAL` / `IFA_ADDRESS` attributes.
public struct AddressMessage: Equatable, Sendable {
    public var removed: Bool
    public var family: UInt8
    public var prefixLength: UInt8
    public var scope: UInt8
    public var interfaceIndex: UInt32
    /// The interface's own address: `IFA_LOCAL` when present (point-to-point links put the peer in
    /// `IFA_ADDRESS`), else `IFA_ADDRESS`. 4 or 16 bytes, network order.
    public var address: [UInt8]
    public var label: String?

    public init(removed: Bool, family: UInt8, prefixLength: UInt8, scope: UInt8 = 0, interfaceIndex: UInt32,
                address: [UInt8], label: String? = nil) {
        self.removed = removed
        self.family = family
        self.prefixLength = prefixLength
        self.scope = scope
        self.interfaceIndex = interfaceIndex
        self.address = address
        self.label = label
    }

    /// Parses an `RTM_NEWADDR` / `RTM_DELADDR` message; nil for other types or a short payload.
    public init?(_ msg: NetlinkMessage) {
        let t = msg.header.type
        guard t == RouteConstants.newAddress || t == RouteConstants.delAddress else { return nil }
        self.init(payload: msg.payload, removed: t == RouteConstants.delAddress)
    }

    public init?(payload p: UnsafeRawBufferPointer, removed: Bool) {
        guard p.count >= 8 else { return nil }
        self.removed = removed
        family = p[0]
        prefixLength = p[1]
        scope = p[3]
        interfaceIndex = p.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
        var local: [UInt8]?
        var addr: [UInt8]?
        for a in AttributeSequence(UnsafeRawBufferPointer(rebasing: p[8...])) {
            switch a.type {
            case RouteConstants.ifaLocal: local = Array(a.payload)
            case RouteConstants.ifaAddress: addr = Array(a.payload)
            case RouteConstants.ifaLabel: label = a.string()
            default: break
            }
        }
        guard let chosen = local ?? addr, chosen.count == 4 || chosen.count == 16 else { return nil }
        address = chosen
    }

    /// The address as text (`10.0.0.1`, `2001:db8::1`).
    public var addressText: String { Self.format(address) }

    /// inet_ntop-style text for 4 or 16 network-order bytes (IPv6 with the longest zero run compressed).
    public static func format(_ b: [UInt8]) -> String {
        if b.count == 4 { return b.map(String.init).joined(separator: ".") }
        guard b.count == 16 else { return "?" }
        let words = (0..<8).map { UInt16(b[2 * $0]) << 8 | UInt16(b[2 * $0 + 1]) }
        if words[0..<5].allSatisfy({ $0 == 0 }) && words[5] == 0xffff {
            return "::ffff:" + b[12..<16].map(String.init).joined(separator: ".")
        }
        var bestStart = -1, bestLen = 0, i = 0
        while i < 8 {
            if words[i] == 0 {
                var j = i
                while j < 8 && words[j] == 0 { j += 1 }
                if j - i > bestLen && j - i > 1 { bestStart = i; bestLen = j - i }
                i = j
            } else { i += 1 }
        }
        func hex(_ r: Range<Int>) -> String { r.map { String(words[$0], radix: 16) }.joined(separator: ":") }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLen)..<8)
    }

    /// `RTM_GETADDR` dump request for one family (`AF_UNSPEC` = 0 for all).
    public static func dumpRequest(family: UInt8 = 0) -> NetlinkRequest {
        NetlinkRequest(type: RouteConstants.getAddress, flags: [], payload: [family, 0, 0, 0, 0, 0, 0, 0])
    }
}

/// A link event or dump entry: `struct ifinfomsg` (16 bytes: family, pad, type, index, flags,
/// change) and `IFLA_IFNAME`.
public struct LinkMessage: Equatable, Sendable {
    public var deleted: Bool
    public var interfaceIndex: UInt32
    public var flags: UInt32
    public var change: UInt32
    public var name: String?

    public init(deleted: Bool, interfaceIndex: UInt32, flags: UInt32, change: UInt32 = 0, name: String?) {
        self.deleted = deleted
        self.interfaceIndex = interfaceIndex
        self.flags = flags
        self.change = change
        self.name = name
    }

    public init?(_ msg: NetlinkMessage) {
        let t = msg.header.type
        guard t == RouteConstants.newLink || t == RouteConstants.delLink, msg.payload.count >= 16 else { return nil }
        let p = msg.payload
        deleted = t == RouteConstants.delLink
        interfaceIndex = p.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
        flags = p.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
        change = p.loadUnaligned(fromByteOffset: 12, as: UInt32.self)
        name = AttributeSequence(UnsafeRawBufferPointer(rebasing: p[16...])).first(type: RouteConstants.iflaName)?.string()
    }

    /// Administratively up and operationally running.
    public var isUp: Bool { !deleted && flags & RouteConstants.iffUp != 0 && flags & RouteConstants.iffRunning != 0 }

    /// `RTM_GETLINK` dump request.
    public static func dumpRequest() -> NetlinkRequest {
        NetlinkRequest(type: RouteConstants.getLink, flags: [], payload: [UInt8](repeating: 0, count: 16))
    }
}
