import CSockDestroy
import Glibc

/// One socket the iterator matched, decoded from `struct sockctl_record` (sock_destroy.h).
public struct BPFDestroyRecord: Sendable, Equatable, CustomStringConvertible {
    public enum Outcome: Sendable, Equatable {
        /// bpf_sock_destroy returned 0: TCP peers got a RST, the owner gets ECONNABORTED.
        case destroyed
        /// Dry run: it matched and would have been destroyed.
        case wouldDestroy
        /// TIME_WAIT: the kernel cannot abort it; reported, not an error.
        case notDestroyable
        /// A request socket (syn-recv): bpf_sock_destroy cannot take it (the kernel answers
        /// EOPNOTSUPP); destroy it by cookie with netlink SOCK_DESTROY, which can.
        case needsNetlink
        /// bpf_sock_destroy failed with this (positive) errno.
        case failed(errno: Int32)
    }

    /// The record as the kernel wrote it; the properties below decode it on demand (a kill of
    /// 100,000 sockets should not format 200,000 addresses nobody prints).
    let raw: sockctl_record

    public var cookie: UInt64 { raw.cookie }
    /// AF_INET or AF_INET6.
    public var family: Int32 { Int32(raw.family) }
    /// IPPROTO_TCP or IPPROTO_UDP.
    public var ipProtocol: Int32 { Int32(raw.protocol) }
    /// Kernel sk_state (TCP_* numbers; 12 = TCP_NEW_SYN_RECV request socket).
    public var state: UInt8 { raw.state }
    public var sourcePort: UInt16 { raw.sport }
    public var destinationPort: UInt16 { raw.dport }
    /// Owner uid (the listener's for request sockets, 0 for TIME_WAIT).
    public var uid: UInt32 { raw.uid }
    /// 16 bytes (IPv6) or 4 bytes (IPv4), network order.
    public var sourceBytes: [UInt8] { Self.bytes(raw.src, family: family) }
    /// The addresses as four words whose memory holds the network-order bytes (IPv4: the first
    /// word, the rest 0); for copying into other address types without a byte array.
    public var sourceWords: (UInt32, UInt32, UInt32, UInt32) { Self.words(raw.src, family: family) }
    public var destinationWords: (UInt32, UInt32, UInt32, UInt32) { Self.words(raw.dst, family: family) }
    public var destinationBytes: [UInt8] { Self.bytes(raw.dst, family: family) }
    /// Addresses as inet_ntop prints them ("10.0.0.1", "::ffff:10.0.0.1", "fd00::1").
    public var source: String { Self.format(family: family, sourceBytes) }
    public var destination: String { Self.format(family: family, destinationBytes) }
    /// Index of the first clause that matched; nil for `everything` / cookie-only requests.
    public var clause: Int? { raw.clause == UInt32.max ? nil : Int(raw.clause) }

    public var outcome: Outcome {
        switch raw.result {
        case 0: return .destroyed
        case SOCKCTL_RESULT_DRY_RUN: return .wouldDestroy
        case SOCKCTL_RESULT_NOT_DESTROYABLE: return .notDestroyable
        case SOCKCTL_RESULT_NEEDS_NETLINK: return .needsNetlink
        default: return .failed(errno: -raw.result)
        }
    }

    init(_ r: sockctl_record) { raw = r }

    public static func == (a: BPFDestroyRecord, b: BPFDestroyRecord) -> Bool {
        withUnsafeBytes(of: a.raw) { x in withUnsafeBytes(of: b.raw) { y in x.elementsEqual(y) } }
    }

    static func words(_ w: (UInt32, UInt32, UInt32, UInt32), family: Int32) -> (UInt32, UInt32, UInt32, UInt32) {
        family == AF_INET ? (w.0, 0, 0, 0) : w
    }

    static func bytes(_ w: (UInt32, UInt32, UInt32, UInt32), family: Int32) -> [UInt8] {
        let words = family == AF_INET ? [w.0] : [w.0, w.1, w.2, w.3]
        return words.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    }

    static func format(family: Int32, _ b: [UInt8]) -> String {
        var out = [CChar](repeating: 0, count: 64)
        let ok = b.withUnsafeBytes { src in
            inet_ntop(family, src.baseAddress, &out, socklen_t(out.count))
        }
        guard ok != nil else { return "?" }
        return String(cString: out)
    }

    /// TCP state name as ss prints it.
    public var stateName: String {
        guard ipProtocol == IPPROTO_TCP else { return state == 1 ? "established" : "unconnected" }
        let names = ["unknown", "established", "syn-sent", "syn-recv", "fin-wait-1", "fin-wait-2", "time-wait",
                     "unconnected", "close-wait", "last-ack", "listening", "closing", "syn-recv"]
        return Int(state) < names.count ? names[Int(state)] : "state-\(state)"
    }

    public var description: String {
        let proto = ipProtocol == IPPROTO_TCP ? "tcp" : "udp"
        func ep(_ a: String, _ p: UInt16) -> String { family == AF_INET6 ? "[\(a)]:\(p)" : "\(a):\(p)" }
        return "\(proto) \(stateName) \(ep(source, sourcePort)) \(ep(destination, destinationPort)) uid:\(uid) cookie:\(cookie) \(outcome)"
    }
}

/// Counters of one destroy(), summed over the protocols (`struct sockctl_stats`).
public struct BPFDestroyCounts: Sendable, Equatable {
    public var visited: UInt64 = 0
    public var matched: UInt64 = 0
    public var destroyed: UInt64 = 0
    public var failed: UInt64 = 0
    public var notDestroyable: UInt64 = 0
    /// Request sockets left for netlink SOCK_DESTROY (see Outcome.needsNetlink).
    public var needsNetlink: UInt64 = 0
}

/// What destroy() did: one record per matched socket (empty when `collectRecords` is false) and
/// the in-kernel counters.
public struct BPFDestroyResult: Sendable {
    public var records: [BPFDestroyRecord]
    public var counts: BPFDestroyCounts
}
