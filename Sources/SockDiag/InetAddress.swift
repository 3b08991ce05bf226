import CLinuxUAPI
#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 address held inline (no heap allocation), as sock_diag reports it in
/// `inet_diag_sockid.idiag_src` / `idiag_dst`: network byte order, IPv4 in the first four bytes.
public struct InetAddress: Hashable, Sendable, CustomStringConvertible {
    /// `AF_INET` or `AF_INET6`.
    public var family: UInt8
    /// The address bytes in network order; only the first 4 are meaningful for IPv4.
    public var bytes: (UInt64, UInt64)

    public static func == (a: InetAddress, b: InetAddress) -> Bool {
        a.family == b.family && a.bytes.0 == b.bytes.0 && a.bytes.1 == b.bytes.1
    }
    public func hash(into h: inout Hasher) {
        h.combine(family); h.combine(bytes.0); h.combine(bytes.1)
    }

    public init(family: UInt8, bytes: (UInt64, UInt64)) {
        self.family = family
        self.bytes = bytes
    }

    /// Builds an address from 4 (IPv4) or 16 (IPv6) network-order bytes.
    public init?<C: Collection>(networkBytes raw: C) where C.Element == UInt8 {
        guard raw.count == 4 || raw.count == 16 else { return nil }
        var storage: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &storage) { dst in
            for (i, b) in raw.enumerated() { dst[i] = b }
        }
        self.init(family: UInt8(raw.count == 4 ? AF_INET : AF_INET6), bytes: storage)
    }

    /// Parses a numeric IPv4 or IPv6 address (`10.0.0.1`, `::1`, `[::1]`, `::ffff:10.0.0.1`).
    public init?(_ text: String) {
        var t = Substring(text)
        if t.hasPrefix("["), t.hasSuffix("]") { t = t.dropFirst().dropLast() }
        var storage: (UInt64, UInt64) = (0, 0)
        let s = String(t)
        if withUnsafeMutableBytes(of: &storage, { inet_pton(AF_INET, s, $0.baseAddress) }) == 1 {
            self.init(family: UInt8(AF_INET), bytes: storage)
        } else if withUnsafeMutableBytes(of: &storage, { inet_pton(AF_INET6, s, $0.baseAddress) }) == 1 {
            self.init(family: UInt8(AF_INET6), bytes: storage)
        } else {
            return nil
        }
    }

    public var isIPv4: Bool { family == UInt8(AF_INET) }
    /// Number of meaningful bytes: 4 or 16.
    public var length: Int { isIPv4 ? 4 : 16 }

    /// The meaningful bytes, in network order.
    public var networkBytes: [UInt8] {
        withUnsafeBytes(of: bytes) { Array($0.prefix(length)) }
    }

    /// True for an IPv6 address of the form `::ffff:a.b.c.d`.
    public var isIPv4Mapped: Bool {
        guard !isIPv4 else { return false }
        return withUnsafeBytes(of: bytes) { b in
            (0..<10).allSatisfy { b[$0] == 0 } && b[10] == 0xff && b[11] == 0xff
        }
    }

    /// The embedded IPv4 address of a v4-mapped IPv6 address.
    public var unmappedIPv4: InetAddress? {
        guard isIPv4Mapped else { return nil }
        let v4 = withUnsafeBytes(of: bytes) { Array($0[12..<16]) }
        return InetAddress(networkBytes: v4)
    }

    /// True when every byte is zero (`0.0.0.0` or `::`).
    public var isUnspecified: Bool { bytes.0 == 0 && bytes.1 == 0 }

    public var description: String {
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        var copy = bytes
        let ok = withUnsafeBytes(of: &copy) { raw in
            inet_ntop(Int32(family), raw.baseAddress, &buf, socklen_t(buf.count)) != nil
        }
        return ok ? String(cString: buf) : "?"
    }
}
