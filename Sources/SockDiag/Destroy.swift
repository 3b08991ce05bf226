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
    /// Requests carry no NLM_F_ACK: the kernel answers only a failed one (with its errno), and a
    /// NLMSG_NOOP with NLM_F_ACK closes each batch. Replies come in request order, so when the
    /// NOOP's ack arrives every failure of the batch has been read and the rest were destroyed:
    /// one receive per batch and per failure instead of one per socket.
    ///
    /// Takes any random-access collection (e.g. `pairs.lazy.map { $0.socket }`), so a caller that
    /// holds sockets inside other values does not copy them into an array first; outcomes are
    /// numbered from 0 whatever the collection's indices.
    public static func destroy<C: RandomAccessCollection>(_ sockets: C, on netlink: NetlinkSocket, batch: Int = 128) throws
        -> [DestroyOutcome] where C.Element == Socket, C.Index == Int {
        var outcomes = [DestroyOutcome](repeating: .alreadyGone, count: sockets.count)
        var start = 0
        while start < sockets.count {
            let end = min(start + batch, sockets.count)
            var bytes: [UInt8] = []
            var bySequence: [UInt32: Int] = [:]
            for i in start..<end {
                let s = sockets[sockets.startIndex + i]
                if s.state == .timeWait || s.isUnix { outcomes[i] = .notDestroyable; continue }
                guard let proto = s.kind.ipProtocol else { outcomes[i] = .notDestroyable; continue }
                var req = InetDiagRequest(family: s.family, ipProtocol: proto, states: SocketState.allMask)
                req.id.sourcePort = s.sourcePort
                req.id.destinationPort = s.destinationPort
                if let a = s.source { req.id.source = a }
                if let a = s.destination { req.id.destination = a }
                req.id.interfaceIndex = s.interfaceIndex
                req.id.cookie = s.cookie
                let seq = netlink.nextSequence()
                bySequence[seq] = i
                bytes += NetlinkRequest(type: SockDiagConstants.sockDestroy, flags: [.request], payload: req.bytes)
                    .encode(sequence: seq)
            }
            if !bySequence.isEmpty {
                let barrier = netlink.nextSequence()
                bytes += NetlinkRequest(type: NetlinkMessageType.noop, flags: [.request, .ack], payload: []).encode(sequence: barrier)
                try netlink.send(bytes)
                var done = false
                while !done {
                    try netlink.receive { datagram in
                        try forEachMessage(in: datagram) { msg in
                            guard msg.header.type == NetlinkMessageType.error, let err = NetlinkErrorReply(msg) else { return }
                            if msg.header.sequence == barrier { done = true; return }
                            guard let i = bySequence.removeValue(forKey: msg.header.sequence) else { return }
                            switch -err.error {
                            case 0: outcomes[i] = .destroyed
                            case ENOENT: outcomes[i] = .alreadyGone
                            case let e: outcomes[i] = .failed(errno: e)
                            }
                        }
                    }
                }
                // No reply: destroyed.
                for i in bySequence.values { outcomes[i] = .destroyed }
            }
            start = end
        }
        return outcomes
    }
}
