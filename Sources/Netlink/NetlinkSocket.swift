import CLinuxUAPI
#if canImport(Glibc)
import Glibc
#endif

/// A raw `AF_NETLINK` socket of one netlink family (e.g. `NETLINK_SOCK_DIAG`, `NETLINK_ROUTE`).
///
/// The socket belongs to the network namespace of the thread that opened it, for its whole life:
/// open it on a thread that already joined the target namespace.
public final class NetlinkSocket {
    public let fd: Int32
    public let family: Int32
    private var sequence: UInt32 = 0
    /// Receive buffer, reused for every datagram. 64 KiB holds the kernel's largest dump chunk (32 KiB).
    private var buffer: UnsafeMutableRawBufferPointer

    /// Opens and binds the socket. `receiveBufferSize` sets SO_RCVBUF (SO_RCVBUFFORCE when privileged),
    /// which matters for multicast listeners that must not lose events.
    public init(family: Int32, receiveBufferSize: Int = 1 << 20, bufferSize: Int = 64 << 10) throws {
        let s = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), family)
        guard s >= 0 else {
            throw NetlinkError(operation: "socket(AF_NETLINK, \(family))", code: errno,
                               detail: errno == EPROTONOSUPPORT ? "netlink family \(family) not available in this kernel" : nil)
        }
        fd = s
        self.family = family
        buffer = .allocate(byteCount: bufferSize, alignment: 8)
        var size = Int32(receiveBufferSize)
        if setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &size, 4) != 0 {
            _ = setsockopt(s, SOL_SOCKET, SO_RCVBUF, &size, 4)
        }
        var one: Int32 = 1
        // Ask for the kernel's error text and cap echoed requests in error replies; both are best effort.
        _ = setsockopt(s, SOL_NETLINK, sockctl_NETLINK_EXT_ACK, &one, 4)
        _ = setsockopt(s, SOL_NETLINK, sockctl_NETLINK_CAP_ACK, &one, 4)
        var addr = sockaddr_nl()
        addr.nl_family = sa_family_t(AF_NETLINK)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_nl>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            close(s)
            buffer.deallocate()
            throw NetlinkError(operation: "bind(AF_NETLINK)", code: e)
        }
        sequence = UInt32(truncatingIfNeeded: Int(bitPattern: UInt(bitPattern: Int(time(nil)))))
    }

    deinit {
        close(fd)
        buffer.deallocate()
    }

    /// A fresh sequence number for a request.
    public func nextSequence() -> UInt32 {
        sequence &+= 1
        return sequence
    }

    /// Subscribes to a multicast group (`NETLINK_ADD_MEMBERSHIP`).
    public func join(group: UInt32) throws {
        var g = group
        guard setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, 4) == 0 else {
            throw NetlinkError(operation: "setsockopt(NETLINK_ADD_MEMBERSHIP \(group))", code: errno)
        }
    }

    /// Sends bytes that hold one or more complete messages in one `sendto` to the kernel.
    public func send(_ bytes: [UInt8]) throws {
        var addr = sockaddr_nl()
        addr.nl_family = sa_family_t(AF_NETLINK)
        while true {
            let n = bytes.withUnsafeBytes { b in
                withUnsafePointer(to: &addr) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
                    }
                }
            }
            if n >= 0 { return }
            if errno == EINTR { continue }
            throw NetlinkError(operation: "sendmsg", code: errno)
        }
    }

    /// Receives one datagram and hands it to `body`; the pointer is valid only during the call.
    /// Retries EINTR. `ENOBUFS` (the socket's queue overflowed and messages were lost) is thrown.
    public func receive<T>(flags: Int32 = 0, _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, flags)
            if n >= 0 {
                return try body(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            }
            if errno == EINTR { continue }
            throw NetlinkError(operation: "recvmsg", code: errno)
        }
    }

    /// Runs a dump: sends `request` with `NLM_F_DUMP`, calls `body` with every reply message of that
    /// sequence until `NLMSG_DONE`. Returns true when the kernel flagged the dump as interrupted
    /// (`NLM_F_DUMP_INTR`): the messages delivered may then be inconsistent and the caller should
    /// run it again. An `NLMSG_ERROR` reply throws with the kernel's extended-ack text.
    @discardableResult
    public func dump(_ request: NetlinkRequest, operation: String, _ body: (NetlinkMessage) throws -> Void) throws -> Bool {
        var req = request
        req.flags.formUnion([.request, .dump])
        let seq = nextSequence()
        try send(req.encode(sequence: seq))
        var interrupted = false
        var done = false
        while !done {
            try receive { datagram in
                try forEachMessage(in: datagram) { msg in
                    guard !done, msg.header.sequence == seq else { return }
                    if msg.header.flags.contains(.dumpInterrupted) { interrupted = true }
                    switch msg.header.type {
                    case NetlinkMessageType.done:
                        done = true
                    case NetlinkMessageType.error:
                        guard let err = NetlinkErrorReply(msg) else {
                            throw NetlinkError(operation: operation, code: 0, detail: "short NLMSG_ERROR reply")
                        }
                        if err.error == 0 { return }
                        throw NetlinkError(operation: operation, code: -err.error, detail: err.message, sequence: seq)
                    case NetlinkMessageType.noop, NetlinkMessageType.overrun:
                        return
                    default:
                        try body(msg)
                    }
                }
            }
        }
        return interrupted
    }
}
