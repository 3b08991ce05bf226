import SockDiag

/// ss's state selectors (`state S`, `exclude S`): names and groups as bits of
/// `inet_diag_req_v2.idiag_states` (bit n = kernel `TCP_*` state n, include/net/tcp_states.h).
public enum StateNames {
    static func bit(_ s: SocketState) -> UInt32 { s.mask }
    /// `state all` (and the base of `exclude`, `connected`, `big`...): every state but
    /// bound-inactive, which is dumped only when named (see `SocketState.dumpAllMask`).
    public static let all: UInt32 = SocketState.dumpAllMask
    /// ss's default for inet sockets (`SS_CONN`): all but listening, closed, time-wait, syn-recv.
    public static let defaultConnected: UInt32 =
        all & ~(bit(.listen) | bit(.close) | bit(.timeWait) | bit(.synRecv))

    /// The mask a state name or group stands for; nil for an unknown name. Case-insensitive as in ss.
    public static func mask(for name: String) -> UInt32? {
        switch name.lowercased() {
        case "all": return all
        case "connected": return all & ~(bit(.close) | bit(.listen))
        case "synchronized": return all & ~(bit(.close) | bit(.listen) | bit(.synSent))
        case "bucket": return bit(.synRecv) | bit(.timeWait)
        case "big": return all & ~(bit(.synRecv) | bit(.timeWait))
        case "established": return bit(.established)
        case "syn-sent": return bit(.synSent)
        case "syn-recv", "syn-rcv": return bit(.synRecv)
        case "fin-wait-1": return bit(.finWait1)
        case "fin-wait-2": return bit(.finWait2)
        case "time-wait": return bit(.timeWait)
        case "closed", "close", "unconnected": return bit(.close)
        case "close-wait": return bit(.closeWait)
        case "last-ack": return bit(.lastAck)
        case "listening": return bit(.listen)
        case "closing": return bit(.closing)
        case "bound-inactive": return bit(.boundInactive)
        default: return nil
        }
    }

    static let known = "all, connected, synchronized, bucket, big, established, syn-sent, syn-recv, "
        + "fin-wait-1, fin-wait-2, time-wait, closed, close-wait, last-ack, listening, closing, bound-inactive"
}
