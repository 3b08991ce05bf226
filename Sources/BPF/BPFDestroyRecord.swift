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

    public var cookie: UInt64
    /// AF_INET or AF_INET6.
    public var family: Int32
    /// IPPROTO_TCP or IPPROTO_UDP.
    public var ipProtocol: Int32
    /// Kernel sk_state (TCP_* numbers; 12 = TCP_NEW_SYN_RECV request socket).
    public var state: UInt8
    public var source: String
    public var sourcePort: UInt16
    public var destination: String
    public var destinationPort: UInt16
    public var uid: UInt32
    public var outcome: Outcome
    /// Index of the first clause that matched; nil for `everything` / cookie-only requests.
    public var clause: Int?

    init(_ r: sockctl_record) {
        cookie = r.cookie
        family = Int32(r.family)
        ipProtocol = Int32(r.protocol)
        state = r.state
        sourcePort = r.sport
        destinationPort = r.dport
        uid = r.uid
        clause = r.clause == UInt32.max ? nil : Int(r.clause)
        source = Self.format(family: family, Self.bytes(r.src))
        destination = Self.format(family: family, Self.bytes(r.dst))
        switch r.result {
        case 0: outcome = .destroyed
        case SOCKCTL_RESULT_DRY_RUN: outcome = .wouldDestroy
        case SOCKCTL_RESULT_NOT_DESTROYABLE: outcome = .notDestroyable
        case SOCKCTL_RESULT_NEEDS_NETLINK: outcome = .needsNetlink
        default: outcome = .failed(errno: -r.result)
        }
    }

    static func bytes(_ w: (UInt32, UInt32, UInt32, UInt32)) -> [UInt8] {
        [w.0, w.1, w.2, w.3].flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
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
