import CSockDestroy
import Glibc

/// An address prefix such as `10.0.0.0/8` or `fd00::/64`. IPv4 prefixes are kept in their
/// IPv4-mapped IPv6 form (`::ffff:10.0.0.0/104`), which is how the BPF program compares them, so
/// an IPv4 prefix also matches IPv4-mapped addresses of dual-stack IPv6 sockets.
public struct BPFPrefix: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// 16 bytes, network order, host bits already cleared.
    public let bytes: [UInt8]
    /// Prefix length over the 128-bit form (an IPv4 /8 is 104).
    public let length: Int
    public let isIPv4: Bool

    /// Parses `ADDR` or `ADDR/LEN` (IPv4 or IPv6); nil when malformed.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let addr = String(parts[0])
        var raw = [UInt8](repeating: 0, count: 16)
        if addr.contains(":") {
            guard raw.withUnsafeMutableBytes({ inet_pton(AF_INET6, addr, $0.baseAddress) }) == 1 else { return nil }
            isIPv4 = false
        } else {
            var v4 = [UInt8](repeating: 0, count: 4)
            guard v4.withUnsafeMutableBytes({ inet_pton(AF_INET, addr, $0.baseAddress) }) == 1 else { return nil }
            raw[10] = 0xff; raw[11] = 0xff
            raw.replaceSubrange(12..<16, with: v4)
            isIPv4 = true
        }
        let max = isIPv4 ? 32 : 128
        var len = max
        if parts.count == 2 {
            guard let l = Int(parts[1]), (0...max).contains(l) else { return nil }
            len = l
        }
        length = isIPv4 ? 96 + len : len
        bytes = BPFPrefix.masked(raw, length)
    }

    static func masked(_ raw: [UInt8], _ length: Int) -> [UInt8] {
        (0..<16).map { i in raw[i] & BPFPrefix.maskByte(i, length) }
    }

    static func maskByte(_ i: Int, _ length: Int) -> UInt8 {
        let bits = min(max(length - 8 * i, 0), 8)
        return bits == 0 ? 0 : UInt8(truncatingIfNeeded: 0xff << (8 - bits))
    }

    public var description: String {
        if isIPv4 { return "\(bytes[12]).\(bytes[13]).\(bytes[14]).\(bytes[15])/\(length - 96)" }
        return "\(BPFDestroyRecord.format(family: AF_INET6, bytes))/\(length)"
    }
}

/// What to destroy in one network namespace: an OR of `clauses`, each an AND of its set fields,
/// optionally narrowed to a set of socket cookies. Mirrors `struct sockctl_clause` /
/// `struct sockctl_config` in Sources/BPF/bpf/sock_destroy.h.
public struct BPFDestroySpec: Sendable {
    public enum AddressFamily: Sendable { case ipv4, ipv6 }
    public enum TransportProtocol: Sendable, Hashable { case tcp, udp }

    /// One AND-term. Every nil field matches anything.
    public struct Clause: Sendable {
        /// `.ipv4` also matches AF_INET6 sockets whose peer is IPv4-mapped.
        public var family: AddressFamily?
        public var source: BPFPrefix?
        public var destination: BPFPrefix?
        public var sourcePorts: ClosedRange<UInt16>?
        public var destinationPorts: ClosedRange<UInt16>?
        /// Kernel `sk_state` numbers (TCP_ESTABLISHED = 1 ... TCP_NEW_SYN_RECV = 12). UDP sockets
        /// are 1 when connected and 7 (TCP_CLOSE) otherwise.
        public var states: Set<UInt8>?
        /// Owner uid as the iterator reports it (uid of the listener for request sockets,
        /// 0 for TIME_WAIT sockets).
        public var uids: ClosedRange<UInt32>?

        public init(family: AddressFamily? = nil, source: BPFPrefix? = nil, destination: BPFPrefix? = nil,
                    sourcePorts: ClosedRange<UInt16>? = nil, destinationPorts: ClosedRange<UInt16>? = nil,
                    states: Set<UInt8>? = nil, uids: ClosedRange<UInt32>? = nil) {
            self.family = family
            self.source = source
            self.destination = destination
            self.sourcePorts = sourcePorts
            self.destinationPorts = destinationPorts
            self.states = states
            self.uids = uids
        }
    }

    public static let maxClauses = Int(SOCKCTL_MAX_CLAUSES)
    /// Capacity of the cookie map (`cookies` in sock_destroy.bpf.c; entries allocated as used).
    public static let maxCookies = Int(SOCKCTL_MAX_COOKIES)

    public var clauses: [Clause]
    /// When set, only sockets whose cookie is in the set are touched (and they must also match a
    /// clause when there are clauses). Use it to destroy exactly a pre-selected set.
    public var cookies: Set<UInt64>?
    public var protocols: Set<TransportProtocol>
    /// Report what would be destroyed; call nothing.
    public var dryRun: Bool
    /// With no clauses: every socket of the namespace matches (`sockctl kill --all`).
    public var everything: Bool
    /// false: only count (BPFDestroyResult.counts); no per-socket records. The benchmark floor.
    public var collectRecords: Bool
    /// Only the sockets whose cookie % `count` == `index` (nil: all). `count` passes with the
    /// indexes 0..<count, on as many destroyers and threads, cover the namespace once.
    public var shard: (index: UInt16, count: UInt16)?

    public init(clauses: [Clause] = [], cookies: Set<UInt64>? = nil, protocols: Set<TransportProtocol> = [.tcp, .udp],
                dryRun: Bool = false, everything: Bool = false, collectRecords: Bool = true) {
        self.clauses = clauses
        self.cookies = cookies
        self.protocols = protocols
        self.dryRun = dryRun
        self.everything = everything
        self.collectRecords = collectRecords
    }

    /// The spec that destroys every TCP and UDP socket of the namespace.
    public static func all(protocols: Set<TransportProtocol> = [.tcp, .udp], dryRun: Bool = false) -> BPFDestroySpec {
        BPFDestroySpec(protocols: protocols, dryRun: dryRun, everything: true)
    }

    func validate() throws(BPFError) {
        if clauses.count > Self.maxClauses {
            throw .invalidSpec("\(clauses.count) clauses, at most \(Self.maxClauses) fit the BPF filter")
        }
        if clauses.isEmpty && cookies == nil && !everything {
            throw .invalidSpec("no clauses, no cookies and not `everything`: refusing to guess")
        }
        if let c = cookies, c.count > Self.maxCookies {
            throw .invalidSpec("\(c.count) cookies, at most \(Self.maxCookies) fit the BPF cookie map")
        }
        if let s = shard, s.count == 0 || s.index >= s.count {
            throw .invalidSpec("shard \(s.index) of \(s.count)")
        }
        if everything && !clauses.isEmpty {
            throw .invalidSpec("`everything` cannot be combined with clauses")
        }
        for (i, c) in clauses.enumerated() {
            if let s = c.states, s.contains(where: { $0 > 31 }) { throw .invalidSpec("clause \(i): state number above 31") }
            if c.family == .ipv6 && (c.source?.isIPv4 == true || c.destination?.isIPv4 == true) {
                throw .invalidSpec("clause \(i): IPv6 family with an IPv4 prefix never matches")
            }
        }
    }

    /// The clause in the kernel's layout.
    static func encode(_ c: Clause) -> sockctl_clause {
        var out = sockctl_clause()
        switch c.family {
        case .ipv4: out.flags = SOCKCTL_CLAUSE_FAMILY_V4
        case .ipv6: out.flags = SOCKCTL_CLAUSE_FAMILY_V6
        case nil: out.flags = 0
        }
        if let s = c.states { out.states = s.reduce(0) { $0 | (1 << UInt32($1)) } } else { out.states = ~0 }
        (out.src, out.src_mask) = words(c.source)
        (out.dst, out.dst_mask) = words(c.destination)
        out.sport_lo = c.sourcePorts?.lowerBound ?? 0
        out.sport_hi = c.sourcePorts?.upperBound ?? .max
        out.dport_lo = c.destinationPorts?.lowerBound ?? 0
        out.dport_hi = c.destinationPorts?.upperBound ?? .max
        out.uid_lo = c.uids?.lowerBound ?? 0
        out.uid_hi = c.uids?.upperBound ?? .max
        return out
    }

    typealias Quad = (UInt32, UInt32, UInt32, UInt32)
    /// Address and mask as four words holding network-order bytes (memory order = wire order).
    static func words(_ p: BPFPrefix?) -> (Quad, Quad) {
        guard let p else { return ((0, 0, 0, 0), (0, 0, 0, 0)) }
        let mask = (0..<16).map { BPFPrefix.maskByte($0, p.length) }
        func w(_ b: [UInt8], _ i: Int) -> UInt32 {
            UInt32(b[4 * i]) | UInt32(b[4 * i + 1]) << 8 | UInt32(b[4 * i + 2]) << 16 | UInt32(b[4 * i + 3]) << 24
        }
        return ((w(p.bytes, 0), w(p.bytes, 1), w(p.bytes, 2), w(p.bytes, 3)),
                (w(mask, 0), w(mask, 1), w(mask, 2), w(mask, 3)))
    }
}
