import CLinuxUAPI
import Namespaces

/// A socket's state as sock_diag reports it: the kernel's `TCP_*` state numbers
/// (include/net/tcp_states.h), which UDP, RAW and UNIX sockets reuse (`TCP_CLOSE` = unconnected,
/// `TCP_ESTABLISHED` = connected, `TCP_LISTEN` = listening).
public struct SocketState: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let established = SocketState(rawValue: 1)
    public static let synSent = SocketState(rawValue: 2)
    public static let synRecv = SocketState(rawValue: 3)
    public static let finWait1 = SocketState(rawValue: 4)
    public static let finWait2 = SocketState(rawValue: 5)
    public static let timeWait = SocketState(rawValue: 6)
    public static let close = SocketState(rawValue: 7)
    public static let closeWait = SocketState(rawValue: 8)
    public static let lastAck = SocketState(rawValue: 9)
    public static let listen = SocketState(rawValue: 10)
    public static let closing = SocketState(rawValue: 11)
    /// A request socket (`TCP_NEW_SYN_RECV`); ss shows it as SYN-RECV.
    public static let newSynRecv = SocketState(rawValue: 12)
    /// `TCP_BOUND_INACTIVE` (Linux 6.6+): bound, never listened or connected.
    public static let boundInactive = SocketState(rawValue: 13)

    /// Bit for `inet_diag_req_v2.idiag_states`.
    public var mask: UInt32 { rawValue < 32 ? 1 << UInt32(rawValue) : 0 }

    /// Long names as in ss's filter language and our JSON output (`established`, `time-wait`, ...).
    public var name: String {
        switch rawValue {
        case 1: return "established"
        case 2: return "syn-sent"
        case 3, 12: return "syn-recv"
        case 4: return "fin-wait-1"
        case 5: return "fin-wait-2"
        case 6: return "time-wait"
        case 7: return "closed"
        case 8: return "close-wait"
        case 9: return "last-ack"
        case 10: return "listening"
        case 11: return "closing"
        case 13: return "bound-inactive"
        default: return "unknown-\(rawValue)"
        }
    }

    /// Short names of ss's State column (`ESTAB`, `UNCONN`, `LISTEN`, ...).
    public var shortName: String {
        switch rawValue {
        case 1: return "ESTAB"
        case 2: return "SYN-SENT"
        case 3, 12: return "SYN-RECV"
        case 4: return "FIN-WAIT-1"
        case 5: return "FIN-WAIT-2"
        case 6: return "TIME-WAIT"
        case 7: return "UNCONN"
        case 8: return "CLOSE-WAIT"
        case 9: return "LAST-ACK"
        case 10: return "LISTEN"
        case 11: return "CLOSING"
        case 13: return "UNCONN"
        default: return "UNKNOWN"
        }
    }

    public var description: String { name }

    /// Every state bit set (for requests that name one socket, where states do not matter).
    public static let allMask: UInt32 = 0xFFFF_FFFF

    /// What "every state" means for a dump: bits 0-12. `TCP_BOUND_INACTIVE` (13) is left out on
    /// purpose: with that bit set the kernel walks its host-wide TCP bind table (every bound socket
    /// of every namespace, connected ones included) on each TCP dump, which doubled the kernel time
    /// of `list -ta` at 100,000 sockets. Such sockets are dumped only when asked for by name
    /// (`state bound-inactive`); ss 6.1 never asks for them.
    public static let dumpAllMask: UInt32 = (1 << 13) - 1
}

/// What kind of socket: the transport for inet sockets, the socket type for unix sockets.
public enum SocketKind: String, Sendable, Hashable, CaseIterable {
    case tcp, udp, raw, mptcp
    case stream, dgram, seqpacket

    public var isUnix: Bool { self == .stream || self == .dgram || self == .seqpacket }
    /// The `IPPROTO_*` number sent in `inet_diag_req_v2.sdiag_protocol`.
    public var ipProtocol: UInt8? {
        switch self {
        case .tcp: return UInt8(IPPROTO_TCP)
        case .udp: return UInt8(IPPROTO_UDP)
        case .raw: return UInt8(IPPROTO_RAW)
        case .mptcp: return 6 // MPTCP sockets are dumped through the TCP handler's mptcp subflow
        default: return nil
        }
    }
}

/// The fields of a `Socket` that only some dumps fill (`-i`, `-m`, `-p`), kept out of line: a
/// socket is copied several times on its way to the output (a kill hands each one through the
/// destroy batch, its result and the printer), and with these inline a socket took 240 bytes
/// instead of 152 and every copy retained two more references. Shared between copies and copied
/// on write: it is mutated only while one socket holds it, which is what makes it Sendable.
final class SocketExtras: @unchecked Sendable {
    var tcpInfo: TCPInfo?
    var congestion: String?
    var memInfo: SocketMemInfo?
    var processes: [SocketProcess] = []

    init() {}

    func copy() -> SocketExtras {
        let c = SocketExtras()
        c.tcpInfo = tcpInfo
        c.congestion = congestion
        c.memInfo = memInfo
        c.processes = processes
        return c
    }
}

/// A process holding a socket (pid, comm, fd): the process index's own value, shared so that a
/// lookup result goes into `Socket.processes` as it is.
public typealias SocketProcess = SocketOwner

/// One socket from a sock_diag dump: `struct inet_diag_msg` / `struct unix_diag_msg` plus the
/// attributes that were asked for. Values are decoded into host order.
///
/// Stored fields are declared small to large (Swift lays them out in declaration order) and the
/// addresses are kept as raw bytes, so that a socket is 152 bytes with at most three references
/// (path, netns label, extras), most of them nil.
public struct Socket: Sendable {
    /// `AF_INET`, `AF_INET6` or `AF_UNIX`.
    public var family: UInt8
    public var kind: SocketKind
    /// For RAW sockets: the IP protocol number the socket was opened with.
    public var rawProtocol: UInt8 = 0
    public var state: SocketState
    /// `idiag_timer`, `idiag_retrans`, `idiag_expires` (ms).
    public var timer: UInt8 = 0
    public var retransmits: UInt8 = 0
    /// Families of `source` / `destination` (0 = none).
    private var sourceFamily: UInt8 = 0
    private var destinationFamily: UInt8 = 0
    public var sourcePort: UInt16 = 0
    public var destinationPort: UInt16 = 0
    /// `idiag_if`: the bound interface (0 = none).
    public var interfaceIndex: UInt32 = 0
    /// The kernel's socket cookie (`sock_gen_cookie`); stable for the socket's life.
    public var cookie: UInt64 = 0
    public var uid: UInt32 = 0
    public var inode: UInt32 = 0
    public var receiveQueue: UInt32 = 0
    public var sendQueue: UInt32 = 0
    public var timerExpiresMs: UInt32 = 0
    /// `INET_DIAG_SHUTDOWN`: bit 0 = no more receives, bit 1 = no more sends.
    public var shutdown: UInt8?
    /// `INET_DIAG_MARK` (needs CAP_NET_ADMIN).
    public var mark: UInt32?
    /// `INET_DIAG_CGROUP_ID`: the cgroup v2 id (the cgroup directory's inode).
    public var cgroupID: UInt64?
    private var sourceBytes: (UInt64, UInt64) = (0, 0)
    private var destinationBytes: (UInt64, UInt64) = (0, 0)
    /// Unix sockets: the peer's inode.
    public var peerInode: UInt32?
    /// Unix sockets: bound path (`@name` for the abstract namespace).
    public var path: String?
    /// Label of the network namespace the socket was dumped from (set by the caller).
    public var netns: String?
    private var extras: SocketExtras?

    public init(family: UInt8, kind: SocketKind, state: SocketState) {
        self.family = family
        self.kind = kind
        self.state = state
    }

    public var source: InetAddress? {
        get { sourceFamily == 0 ? nil : InetAddress(family: sourceFamily, bytes: sourceBytes) }
        set {
            sourceFamily = newValue?.family ?? 0
            sourceBytes = newValue?.bytes ?? (0, 0)
        }
    }

    public var destination: InetAddress? {
        get { destinationFamily == 0 ? nil : InetAddress(family: destinationFamily, bytes: destinationBytes) }
        set {
            destinationFamily = newValue?.family ?? 0
            destinationBytes = newValue?.bytes ?? (0, 0)
        }
    }

    /// The extras for writing: made when first needed, copied when another socket shares them.
    private mutating func writableExtras() -> SocketExtras {
        if let e = extras, isKnownUniquelyReferenced(&extras) { return e }
        let e = extras?.copy() ?? SocketExtras()
        extras = e
        return e
    }

    /// `INET_DIAG_INFO`: `struct tcp_info`.
    public var tcpInfo: TCPInfo? {
        get { extras?.tcpInfo }
        set { if newValue != nil || extras != nil { writableExtras().tcpInfo = newValue } }
    }
    /// `INET_DIAG_CONG`: congestion control algorithm name.
    public var congestion: String? {
        get { extras?.congestion }
        set { if newValue != nil || extras != nil { writableExtras().congestion = newValue } }
    }
    /// `INET_DIAG_SKMEMINFO` / `UNIX_DIAG_MEMINFO`.
    public var memInfo: SocketMemInfo? {
        get { extras?.memInfo }
        set { if newValue != nil || extras != nil { writableExtras().memInfo = newValue } }
    }
    /// Filled by a process lookup (`-p`).
    public var processes: [SocketProcess] {
        get { extras?.processes ?? [] }
        set { if !newValue.isEmpty || extras != nil { writableExtras().processes = newValue } }
    }

    public var isUnix: Bool { family == UInt8(AF_UNIX) }
    /// The family name used in JSON output: `inet`, `inet6` or `unix`.
    public var familyName: String {
        switch Int32(family) {
        case AF_INET: return "inet"
        case AF_INET6: return "inet6"
        case AF_UNIX: return "unix"
        default: return "af\(family)"
        }
    }
}

/// `INET_DIAG_SKMEMINFO`: the `SK_MEMINFO_*` counters (include/uapi/linux/sock_diag.h).
public struct SocketMemInfo: Sendable, Equatable {
    public var rmemAlloc: UInt32 = 0
    public var rcvbuf: UInt32 = 0
    public var wmemAlloc: UInt32 = 0
    public var sndbuf: UInt32 = 0
    public var fwdAlloc: UInt32 = 0
    public var wmemQueued: UInt32 = 0
    public var optmem: UInt32 = 0
    public var backlog: UInt32 = 0
    public var drops: UInt32 = 0
    public init() {}
}
