#if canImport(Glibc)
import Glibc
#endif
import CLinuxUAPI
import SockDiag

/// Parses ss's host conditions (`ADDR`, `ADDR/PREFIX`, `ADDR:PORT`, `[V6]:PORT`, `*`, `*:PORT`,
/// `:PORT`, `unix:PATH`) the way iproute2's `parse_hostcond` reads them.
enum HostParser {
    /// C `strtoul(..., 0)` style number: decimal, `0x` hex, leading-0 octal.
    static func cNumber(_ s: String, max: UInt64) -> UInt64? {
        guard !s.isEmpty else { return nil }
        var t = Substring(s)
        var radix = 10
        if t.hasPrefix("0x") || t.hasPrefix("0X") { radix = 16; t = t.dropFirst(2) }
        else if t.count > 1, t.hasPrefix("0") { radix = 8; t = t.dropFirst() }
        guard !t.isEmpty, let v = UInt64(t, radix: radix), v <= max else { return nil }
        return v
    }

    /// A port number (0-65535) or a service name known to `getservbyname` for tcp or udp.
    static func port(_ s: String) -> UInt16? {
        if let n = cNumber(s, max: 65535) { return UInt16(n) }
        guard !s.isEmpty, s.first!.isLetter else { return nil }
        var ports: Set<UInt16> = []
        for proto in ["tcp", "udp"] {
            if let se = getservbyname(s, proto) {
                ports.insert(UInt16(bigEndian: UInt16(truncatingIfNeeded: se.pointee.s_port)))
            }
        }
        return ports.count == 1 ? ports.first : nil
    }

    /// iproute2's IPv4 reader: 1-4 dotted parts, each a C number <= 255 (`10` = 10.0.0.0).
    static func ipv4(_ s: String) -> InetAddress? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...4).contains(parts.count) else { return nil }
        var bytes = [UInt8](repeating: 0, count: 4)
        for (i, p) in parts.enumerated() {
            guard let v = cNumber(String(p), max: 255) else { return nil }
            bytes[i] = UInt8(v)
        }
        return InetAddress(networkBytes: bytes)
    }

    /// `ADDR[/PREFIX]`; the prefix may be a dotted IPv4 netmask. `forcing` restricts the family.
    static func prefix(_ s: String, family: Int32? = nil) -> InetPrefix? {
        let parts = s.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let a = String(parts[0])
        if ["any", "all", "default"].contains(a) {
            return parts.count == 1 ? InetPrefix(address: nil, prefixLength: 0) : nil
        }
        let addr: InetAddress?
        if a.contains(":") { addr = InetAddress(a).flatMap { $0.isIPv4 ? nil : $0 } } else { addr = ipv4(a) }
        guard let address = addr else { return nil }
        if let f = family, Int32(address.family) != f { return nil }
        let bits = address.isIPv4 ? 32 : 128
        guard parts.count == 2 else { return InetPrefix(address: address, prefixLength: bits) }
        let p = String(parts[1])
        if let n = cNumber(p, max: UInt64(bits)) { return InetPrefix(address: address, prefixLength: Int(n)) }
        if let m = ipv4(p), p.contains(".") {
            let v = m.networkBytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let host = ~v
            guard host & (host &+ 1) == 0 else { return nil }
            return InetPrefix(address: address, prefixLength: v.nonzeroBitCount)
        }
        return nil
    }

    static func parse(_ raw: String, error: (String) -> FilterSyntaxError) throws -> HostCondition {
        var text = raw
        var family: Int32? = nil
        if text.hasPrefix("unix:") {
            return HostCondition(text: String(text.dropFirst(5)), inet: nil, port: nil, unixOnly: true)
        }
        for (p, f) in [("inet6:", AF_INET6), ("inet:", AF_INET)] where text.hasPrefix(p) {
            text = String(text.dropFirst(p.count)); family = f
        }
        for p in ["link:", "netlink:", "vsock:"] where text.hasPrefix(p) {
            throw error("'\(p)' addresses are not supported (sockctl filters inet and unix sockets)")
        }
        let looksUnix = family == nil && (text.hasPrefix("/") || text.hasPrefix("@") || text.contains(where: { "*?[".contains($0) }))
        let parsed: HostCondition?
        do { parsed = try inet(text, family: family, error: error) } catch {
            if looksUnix { return HostCondition(text: text, inet: nil, port: nil) }
            throw error
        }
        if let c = parsed {
            var c = c
            c.text = text
            c.inetOnly = family != nil
            return c
        }
        if looksUnix {
            return HostCondition(text: text, inet: nil, port: nil)
        }
        throw error("an inet prefix is expected rather than '\(raw)' (addresses are numeric; write [V6]:PORT for IPv6 with a port, unix:PATH for a unix path)")
    }

    /// The inet reading, splitting the port like ss: `[..]`, `*`, else the last ':' after any '/'.
    /// When ss's split gives no valid address (e.g. `::1`, `fe80::1`) the whole text is tried as an address.
    static func inet(_ s: String, family: Int32?, error: (String) -> FilterSyntaxError) throws -> HostCondition? {
        var addr: Substring
        var portText: Substring? = nil
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else { return nil }
            addr = s[s.index(after: s.startIndex)..<close]
            var rest = s[s.index(after: close)...]
            if rest.hasPrefix(":") { rest = rest.dropFirst() }
            portText = rest
        } else if s.hasPrefix("*") {
            addr = ""
            var rest = s.dropFirst()
            if rest.hasPrefix(":") { rest = rest.dropFirst() }
            portText = rest
        } else {
            let searchFrom = s.firstIndex(of: "/") ?? s.startIndex
            if let colon = s[searchFrom...].lastIndex(of: ":") {
                addr = s[..<colon]
                portText = s[s.index(after: colon)...]
            } else {
                addr = Substring(s)
            }
        }
        var port: UInt16? = nil
        if let pt = portText, !pt.isEmpty, pt != "*" {
            guard let p = HostParser.port(String(pt)) else {
                // ss would fail here; accept an unbracketed IPv6 address as a whole.
                if !s.hasPrefix("["), let whole = prefix(s, family: family), whole.address?.isIPv4 == false {
                    return HostCondition(text: s, inet: whole, port: nil)
                }
                if s.hasPrefix("/") || s.hasPrefix("@") { return nil }
                throw error("'\(pt)' does not look like a port")
            }
            port = p
        }
        if addr.isEmpty || addr == "*" {
            return HostCondition(text: s, inet: InetPrefix(address: nil, prefixLength: 0), port: port)
        }
        if let p = prefix(String(addr), family: family) {
            return HostCondition(text: s, inet: p, port: port)
        }
        if !s.hasPrefix("["), let whole = prefix(s, family: family), whole.address?.isIPv4 == false {
            return HostCondition(text: s, inet: whole, port: nil)
        }
        return nil
    }
}
