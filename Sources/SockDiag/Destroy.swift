import CLinuxUAPI
import Netlink
#if canImport(Glibc)
import Glibc
#endif

/// What happened to one socket a destroy was asked for.
public enum DestroyOutcome: Equatable, Sendable {
    case destroyed
    /// Dry run: would have been destroyed.
    case wouldDestroy
    /// `ENOENT`: the socket (with this cookie) no longer exists; nothing else was touched.
    case alreadyGone
    /// TIME-WAIT sockets cannot be destroyed; reported, not an error.
    case notDestroyable
    case failed(errno: Int32)

    public var name: String {
        switch self {
        case .destroyed: return "destroyed"
        case .wouldDestroy: return "would-destroy"
        case .alreadyGone: return "already-gone"
        case .notDestroyable: return "not-destroyable"
        case .failed: return "failed"
        }
    }
}

extension SockDiagClient {
    /// A fresh `NETLINK_SOCK_DIAG` socket in the calling thread's namespace (for destroy batches).
    public static func openSocket(receiveBufferSize: Int = 1 << 20) throws -> NetlinkSocket {
        try NetlinkSocket(family: NETLINK_SOCK_DIAG, receiveBufferSize: receiveBufferSize)
    }

    /// `SOCK_DESTROY` for each socket, many requests per `sendmsg` on a separate netlink socket, each
    /// request naming the socket by family, protocol, endpoints, interface and cookie, so that a socket
    /// that closed and whose 4-tuple was reused since the dump is never hit (the kernel refuses a
    /// cookie mismatch with ENOENT). Outcomes come back in the order of `sockets`.
    ///
    /// Takes any random-access collection (e.g. `pairs.lazy.map { $0.socket }`), so a caller that
    /// holds sockets inside other values does not copy them into an array first; outcomes are
    /// numbered from 0 whatever the collection's indices. Inlinable: the walk over the caller's
    /// collection is compiled for its type, and only the requests (`DestroyTarget`, no reference
    /// counting) cross into this module.
    @inlinable
    public static func destroy<C: RandomAccessCollection>(_ sockets: C, on netlink: NetlinkSocket, batch: Int = 128) throws
        -> [DestroyOutcome] where C.Element == Socket, C.Index == Int {
        var targets: [DestroyTarget] = []
        targets.reserveCapacity(sockets.count)
        for s in sockets { targets.append(DestroyTarget(s)) }
        return try destroy(targets: targets, on: netlink, batch: batch)
    }

    /// `destroy(_:on:batch:)` for requests already made.
    ///
    /// Requests carry no NLM_F_ACK: the kernel answers only a failed one (with its errno), and a
    /// NLMSG_NOOP with NLM_F_ACK closes each batch. Replies come in request order, so when the
    /// NOOP's ack arrives every failure of the batch has been read and the rest were destroyed:
    /// one receive per batch and per failure instead of one per socket. A batch's requests take
    /// consecutive sequence numbers (one thread uses a netlink socket at a time), so a reply's
    /// sequence number is its request's offset in the batch.
    public static func destroy(targets: [DestroyTarget], on netlink: NetlinkSocket, batch: Int = 128) throws -> [DestroyOutcome] {
        let messageSize = NetlinkHeader.size + SockDiagConstants.inetRequestSize
        var outcomes = [DestroyOutcome](repeating: .notDestroyable, count: targets.count)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(min(batch, targets.count) * messageSize + NetlinkHeader.size)
        var sent: [Int] = []  // sent[k]: index of the request with sequence first + k
        sent.reserveCapacity(min(batch, targets.count))
        var start = 0
        while start < targets.count {
            let end = min(start + batch, targets.count)
            bytes.removeAll(keepingCapacity: true)
            sent.removeAll(keepingCapacity: true)
            var first: UInt32 = 0
            for i in start..<end {
                guard let request = targets[i].request else { continue }
                let sequence = netlink.nextSequence()
                if sent.isEmpty { first = sequence }
                sent.append(i)
                NetlinkHeader(length: UInt32(messageSize), type: SockDiagConstants.sockDestroy, flags: [.request],
                              sequence: sequence).write(into: &bytes)
                request.write(into: &bytes)
                // No reply: destroyed (see above).
                outcomes[i] = .destroyed
            }
            start = end
            if sent.isEmpty { continue }
            let barrier = netlink.nextSequence()
            NetlinkHeader(length: UInt32(NetlinkHeader.size), type: NetlinkMessageType.noop, flags: [.request, .ack],
                          sequence: barrier).write(into: &bytes)
            try netlink.send(bytes)
            var done = false
            while !done {
                try netlink.receive { datagram in
                    try forEachMessage(in: datagram) { msg in
                        guard msg.header.type == NetlinkMessageType.error, let err = NetlinkErrorReply(msg) else { return }
                        if msg.header.sequence == barrier { done = true; return }
                        let k = Int(msg.header.sequence &- first)
                        guard k >= 0, k < sent.count else { return }
                        switch -err.error {
                        case 0: outcomes[sent[k]] = .destroyed
                        case ENOENT: outcomes[sent[k]] = .alreadyGone
                        case let e: outcomes[sent[k]] = .failed(errno: e)
                        }
                    }
                }
            }
        }
        return outcomes
    }
}

/// One `SOCK_DESTROY` request, made from a `Socket`: `inet_diag_req_v2` with the socket's family,
/// protocol, endpoints, interface and cookie. No reference-counted fields, so batches of them are
/// cheap to build and hand over.
public struct DestroyTarget: Sendable {
    /// nil when the kernel cannot destroy the socket (TIME-WAIT, unix sockets).
    public var request: InetDiagRequest?

    @inlinable
    public init(_ s: Socket) {
        guard s.state != .timeWait, !s.isUnix, let proto = s.kind.ipProtocol else { request = nil; return }
        var req = InetDiagRequest(family: s.family, ipProtocol: proto, states: SocketState.allMask)
        req.id.sourcePort = s.sourcePort
        req.id.destinationPort = s.destinationPort
        if let a = s.source { req.id.source = a }
        if let a = s.destination { req.id.destination = a }
        req.id.interfaceIndex = s.interfaceIndex
        req.id.cookie = s.cookie
        request = req
    }
}
