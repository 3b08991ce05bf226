import CLinuxUAPI
import Netlink
#if canImport(Glibc)
import Glibc
#endif

/// What to dump: which families and kinds, which states, which optional attributes, and per-family
/// kernel bytecode (`INET_DIAG_REQ_BYTECODE`).
public struct DumpQuery: Sendable {
    public var kinds: [SocketKind]
    /// `AF_INET` / `AF_INET6`; ignored for unix kinds.
    public var families: [UInt8]
    public var states: UInt32
    public var extensions: InetDiagExtensions = []
    public var unixShow: UInt32 = UnixDiagRequest().show
    /// Bytecode per family (`AF_INET`, `AF_INET6`); absent or empty = no kernel filter.
    public var bytecode: [UInt8: [UInt8]] = [:]
    /// TCP over both families in one walk of the kernel's hash tables instead of one per family:
    /// the legacy `TCPDIAG_GETSOCK` request dumps with family AF_UNSPEC (inet_diag_dump_compat).
    /// Uses `bytecode[AF_INET6]`, so that program must be right for AF_INET sockets too (ours is:
    /// host conditions carry their family and the kernel compares per socket).
    public var tcpInOneWalk = false
    /// TCP only: a local / remote port every wanted socket has (0 = any), put in the request's
    /// socket id (`idiag_sport` / `idiag_dport`, network order). The kernel's TCP dump compares them
    /// before it runs the bytecode, and skips the listening table when a remote port is given; the
    /// bytecode still decides. (The UDP dump compares these fields in host byte order instead, so
    /// they are not used for UDP.)
    public var tcpSourcePort: UInt16 = 0
    public var tcpDestinationPort: UInt16 = 0

    public init(kinds: [SocketKind], families: [UInt8] = [UInt8(AF_INET), UInt8(AF_INET6)], states: UInt32) {
        self.kinds = kinds
        self.families = families
        self.states = states
    }
}

/// A sock_diag session in one network namespace (the one of the thread that created it).
public final class SockDiagClient {
    private var netlink: NetlinkSocket
    /// How many times a dump had to be run again (kernel `NLM_F_DUMP_INTR` or a lost reply).
    public private(set) var restarts = 0
    public static let maxRestarts = 5

    public init() throws {
        netlink = try NetlinkSocket(family: NETLINK_SOCK_DIAG)
    }

    /// The underlying socket, for destroy batches and event subscriptions.
    public var socket: NetlinkSocket { netlink }

    /// Streams every socket that `query` selects to `body`, family by family, kind by kind.
    /// Sockets are handed over one at a time and never collected: memory stays flat however many
    /// there are. If the kernel interrupts a dump (or replies were lost), it is run again and
    /// sockets already delivered (by cookie) are skipped.
    public func dump(_ query: DumpQuery, _ body: (inout Socket) throws -> Void) throws {
        for kind in query.kinds {
            if kind.isUnix {
                var req = UnixDiagRequest(states: query.states)
                req.show = query.unixShow
                let wanted = kind
                let request = NetlinkRequest(type: SockDiagConstants.sockDiagByFamily, flags: [], payload: req.bytes)
                try runDump(request, operation: "SOCK_DIAG_BY_FAMILY(unix)") { p in
                    var s = try Socket(unixDiag: p)
                    guard s.kind == wanted else { return nil }
                    try body(&s)
                    return s.cookie
                }
                continue
            }
            guard let proto = kind.ipProtocol else { continue }
            if kind == .tcp && query.tcpInOneWalk && Set(query.families) == [UInt8(AF_INET), UInt8(AF_INET6)] {
                // struct inet_diag_req: family (AF_UNSPEC), src_len, dst_len, ext, id, states, dbs.
                var payload: [UInt8] = [0, 0, 0, query.extensions.rawValue]
                var id = InetSocketID(family: UInt8(AF_INET))
                id.sourcePort = query.tcpSourcePort
                id.destinationPort = query.tcpDestinationPort
                id.write(into: &payload)
                payload.appendInteger(query.states)
                payload.appendInteger(UInt32(0))
                var request = NetlinkRequest(type: SockDiagConstants.tcpDiagGetSock, flags: [], payload: payload)
                if let bc = query.bytecode[UInt8(AF_INET6)], !bc.isEmpty {
                    request.attributes.append(type: SockDiagConstants.InetRequestAttribute.bytecode, payload: bc)
                }
                try runDump(request, operation: "TCPDIAG_GETSOCK(inet+inet6 tcp)") { p in
                    var s = try Socket(inetDiag: p, kind: kind)
                    try body(&s)
                    return s.cookie
                }
                continue
            }
            for family in query.families {
                var req = InetDiagRequest(family: family, ipProtocol: proto, states: query.states)
                req.extensions = query.extensions
                if kind == .tcp {
                    req.id.sourcePort = query.tcpSourcePort
                    req.id.destinationPort = query.tcpDestinationPort
                }
                var request = NetlinkRequest(type: SockDiagConstants.sockDiagByFamily, flags: [], payload: req.bytes)
                if let bc = query.bytecode[family], !bc.isEmpty {
                    request.attributes.append(type: SockDiagConstants.InetRequestAttribute.bytecode, payload: bc)
                }
                let name = "SOCK_DIAG_BY_FAMILY(\(family == UInt8(AF_INET) ? "inet" : "inet6") \(kind.rawValue))"
                try runDump(request, operation: name) { p in
                    var s = try Socket(inetDiag: p, kind: kind)
                    try body(&s)
                    return s.cookie
                }
            }
        }
    }

    /// Runs one dump, restarting it on interruption. `deliver` decodes and hands on one reply and
    /// returns its cookie (nil when skipped).
    private func runDump(_ request: NetlinkRequest, operation: String,
                         _ deliver: (UnsafeRawBufferPointer) throws -> UInt64?) throws {
        var delivered: [UInt64] = []
        var skip: Set<UInt64> = []
        var attempt = 0
        while true {
            do {
                let interrupted = try netlink.dump(request, operation: operation) { msg in
                    if !skip.isEmpty, msg.payload.count >= 16 {
                        if let c = Self.peekCookie(msg.payload, unix: request.payload.first == UInt8(AF_UNIX)), skip.contains(c) { return }
                    }
                    if let c = try deliver(msg.payload) { delivered.append(c) }
                }
                if !interrupted { return }
            } catch let e as NetlinkError where e.code == ENOBUFS {
                // Replies were dropped; the socket's state is unknown, so start over on a fresh one.
                netlink = try NetlinkSocket(family: NETLINK_SOCK_DIAG)
            }
            attempt += 1
            restarts += 1
            if attempt > Self.maxRestarts {
                throw NetlinkError(operation: operation, code: EAGAIN,
                                   detail: "dump interrupted \(attempt) times in a row; the socket table is changing too fast")
            }
            skip.formUnion(delivered)
            delivered.removeAll()
        }
    }

    /// Reads the cookie of a reply without decoding it.
    static func peekCookie(_ p: UnsafeRawBufferPointer, unix: Bool) -> UInt64? {
        let off = unix ? 8 : 44
        guard p.count >= off + 8 else { return nil }
        let lo = p.loadUnaligned(fromByteOffset: off, as: UInt32.self)
        let hi = p.loadUnaligned(fromByteOffset: off + 4, as: UInt32.self)
        return UInt64(hi) << 32 | UInt64(lo)
    }
}
