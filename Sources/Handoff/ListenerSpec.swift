#if canImport(Glibc)
import Glibc
#endif

/// One `--listen` URL, parsed.
///
///     tcp://ADDR:PORT        TCP listener; ADDR is IPv4, [IPv6], or empty for 0.0.0.0
///     tcp://[::1]:8080       IPv6 (add ?v6only=0 to accept IPv4-mapped clients on [::])
///     udp://ADDR:PORT        bound UDP socket
///     unix:///run/app.sock   unix stream listener (a stale socket file is replaced; a live one is
///                            "address in use"); unix://@name for the abstract namespace
///
/// Options (query string, `&`-separated):
///
///     name=NAME      the name in LISTEN_FDNAMES (default: tcp-PORT, udp-PORT, unix-BASENAME)
///     reuseport=1    set SO_REUSEPORT before bind (for servers that also open their own)
///     backlog=N      listen(2) backlog, 1...65535 (default 4096; the kernel caps it at somaxconn)
///     nonblock=1     open the socket with O_NONBLOCK (shared by every generation: see Listener)
///     v6only=0|1     IPV6_V6ONLY for IPv6 addresses (default: the kernel's)
///     mode=0660      chmod of a unix socket path
public struct ListenerSpec: Equatable, CustomStringConvertible {
    public enum Kind: String, Equatable { case tcp, udp, unix }

    public var kind: Kind
    /// Numeric address (`0.0.0.0`, `::1`) for tcp/udp; the path (leading `@` = abstract) for unix.
    public var address: String
    public var port: UInt16
    public var name: String
    public var reusePort = false
    public var backlog: Int32 = 4096
    public var nonBlocking = false
    public var v6Only: Bool?
    public var mode: UInt32?
    /// The URL as given.
    public var url: String

    public var isIPv6: Bool { kind != .unix && address.contains(":") }

    public var description: String {
        switch kind {
        case .unix: return "unix://\(address) (\(name))"
        default: return "\(kind.rawValue)://\(isIPv6 ? "[\(address)]" : address):\(port) (\(name))"
        }
    }

    public init(kind: Kind, address: String, port: UInt16, name: String, url: String) {
        self.kind = kind
        self.address = address
        self.port = port
        self.name = name
        self.url = url
    }

    /// Parse one URL; errors name the part that is wrong.
    public static func parse(_ url: String) throws -> ListenerSpec {
        func bad(_ reason: String) -> HandoffError { .badListenURL(url: url, reason: reason) }
        guard let schemeEnd = url.range(of: "://") else {
            throw bad("missing scheme; expected tcp://ADDR:PORT, udp://ADDR:PORT or unix:///PATH")
        }
        let schemeText = String(url[..<schemeEnd.lowerBound]).lowercased()
        guard let kind = Kind(rawValue: schemeText) else {
            throw bad("unknown scheme '\(schemeText)'; expected tcp, udp or unix")
        }
        var rest = String(url[schemeEnd.upperBound...])
        var query = ""
        if let q = rest.firstIndex(of: "?") {
            query = String(rest[rest.index(after: q)...])
            rest = String(rest[..<q])
        }
        var spec: ListenerSpec
        switch kind {
        case .unix:
            guard rest.hasPrefix("/") || rest.hasPrefix("@") else {
                throw bad("unix path must be absolute (unix:///run/app.sock) or abstract (unix://@name)")
            }
            guard rest.count > 1 else { throw bad("empty unix socket path") }
            guard rest.utf8.count < 108 else { throw bad("unix socket path longer than 107 bytes (sun_path)") }
            let base = rest.split(separator: "/").last.map(String.init) ?? rest
            spec = ListenerSpec(kind: .unix, address: rest, port: 0,
                                name: "unix-" + base.replacingOccurrences(of: "@", with: ""), url: url)
        case .tcp, .udp:
            let host: String
            let portText: String
            if rest.hasPrefix("[") {
                guard let close = rest.firstIndex(of: "]") else { throw bad("'[' without ']' around the IPv6 address") }
                host = String(rest[rest.index(after: rest.startIndex)..<close])
                let after = rest[rest.index(after: close)...]
                guard after.hasPrefix(":") else { throw bad("missing ':PORT' after ']'") }
                portText = String(after.dropFirst())
                guard isIPv6Literal(host) else { throw bad("'\(host)' is not an IPv6 address") }
            } else {
                guard let colon = rest.lastIndex(of: ":") else { throw bad("missing ':PORT'") }
                host = String(rest[..<colon])
                portText = String(rest[rest.index(after: colon)...])
                if host.contains(":") { throw bad("IPv6 addresses go in brackets: \(kind.rawValue)://[\(host)]:\(portText)") }
                if !host.isEmpty && !isIPv4Literal(host) {
                    throw bad("'\(host)' is not a numeric IPv4 address (host names are not resolved; use e.g. 127.0.0.1 or [::1])")
                }
            }
            guard !portText.isEmpty else { throw bad("missing port number after ':'") }
            guard let port = UInt16(portText) else { throw bad("port '\(portText)' is not a number in 0...65535") }
            spec = ListenerSpec(kind: kind, address: host.isEmpty ? "0.0.0.0" : host, port: port,
                                name: "\(kind.rawValue)-\(port)", url: url)
        }
        if !query.isEmpty {
            for item in query.split(separator: "&", omittingEmptySubsequences: true) {
                let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                let key = parts[0]
                let value = parts.count > 1 ? parts[1] : ""
                func flag() throws -> Bool {
                    switch value {
                    case "1", "true", "yes": return true
                    case "0", "false", "no": return false
                    default: throw bad("option \(key)='\(value)': expected 1 or 0")
                    }
                }
                switch key {
                case "name":
                    try validateName(value, url: url)
                    spec.name = value
                case "reuseport":
                    guard kind != .unix else { throw bad("reuseport applies to tcp and udp only") }
                    spec.reusePort = try flag()
                case "backlog":
                    guard let n = Int32(value), (1...65535).contains(n) else {
                        throw bad("backlog='\(value)': expected a number in 1...65535")
                    }
                    spec.backlog = n
                case "nonblock":
                    spec.nonBlocking = try flag()
                case "v6only":
                    guard spec.isIPv6 else { throw bad("v6only applies to IPv6 addresses only") }
                    spec.v6Only = try flag()
                case "mode":
                    guard kind == .unix, !spec.address.hasPrefix("@") else { throw bad("mode applies to unix socket paths only") }
                    guard let m = UInt32(value, radix: 8), m <= 0o7777 else { throw bad("mode='\(value)': expected octal like 0660") }
                    spec.mode = m
                default:
                    throw bad("unknown option '\(key)' (known: name, reuseport, backlog, nonblock, v6only, mode)")
                }
            }
        }
        return spec
    }

    /// Names as systemd's FileDescriptorName= allows them: 1...255 printable ASCII, no ':'.
    static func validateName(_ name: String, url: String) throws {
        guard !name.isEmpty, name.utf8.count <= 255,
              name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: ":") }) else {
            throw HandoffError.badListenURL(url: url, reason: "name='\(name)': 1 to 255 printable ASCII characters, no ':' or spaces")
        }
    }

    static func isIPv4Literal(_ s: String) -> Bool {
        var a = in_addr()
        return inet_pton(AF_INET, s, &a) == 1
    }

    static func isIPv6Literal(_ s: String) -> Bool {
        var a = in6_addr()
        return inet_pton(AF_INET6, s, &a) == 1
    }

    /// Parse several URLs and check that their names are unique.
    public static func parseAll(_ urls: [String]) throws -> [ListenerSpec] {
        let specs = try urls.map(parse)
        var seen: [String: String] = [:]
        for spec in specs {
            if let other = seen[spec.name] {
                throw HandoffError.config("--listen \(spec.url): name '\(spec.name)' is also used by \(other); add ?name=OTHER to one of them")
            }
            seen[spec.name] = spec.url
        }
        return specs
    }
}
