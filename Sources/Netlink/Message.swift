/// One netlink message inside a received buffer: its header and the payload after it.
/// The payload points into the receive buffer and is valid only inside the callback that got it.
public struct NetlinkMessage {
    public var header: NetlinkHeader
    public var payload: UnsafeRawBufferPointer
}

/// Builds a request: header (length and sequence filled in by `finish`), fixed payload, attributes.
public struct NetlinkRequest {
    public var type: UInt16
    public var flags: NetlinkFlags
    public var payload: [UInt8]
    public var attributes = AttributeWriter()

    public init(type: UInt16, flags: NetlinkFlags, payload: [UInt8]) {
        self.type = type
        self.flags = flags
        self.payload = payload
    }

    /// The wire bytes: `nlmsghdr` + aligned payload + attributes.
    public func encode(sequence: UInt32, pid: UInt32 = 0) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(NetlinkHeader.size + payload.count + attributes.bytes.count + 4)
        NetlinkHeader(length: 0, type: type, flags: flags, sequence: sequence, pid: pid).write(into: &out)
        out.append(contentsOf: payload)
        out.padToAlignment()
        out.append(contentsOf: attributes.bytes)
        out.setInteger(UInt32(out.count), at: 0)
        return out
    }
}

/// Splits a received datagram into messages. A header whose length is below 16 or runs past the
/// datagram is a protocol error (the kernel never sends one), reported instead of trusted.
public func forEachMessage(
    in buffer: UnsafeRawBufferPointer,
    _ body: (NetlinkMessage) throws -> Void
) throws {
    var offset = 0
    while buffer.count - offset >= NetlinkHeader.size {
        guard let header = NetlinkHeader(buffer, at: offset) else { break }
        let len = Int(header.length)
        guard len >= NetlinkHeader.size, offset + len <= buffer.count else {
            throw NetlinkError(operation: "recvmsg", code: 0,
                               detail: "malformed netlink message: length \(len) at offset \(offset) of a \(buffer.count)-byte datagram")
        }
        let payload = UnsafeRawBufferPointer(rebasing: buffer[(offset + NetlinkHeader.size)..<(offset + len)])
        try body(NetlinkMessage(header: header, payload: payload))
        offset += netlinkAlign(len)
    }
}

/// The content of an `NLMSG_ERROR` message (`struct nlmsgerr` + extended-ack attributes).
public struct NetlinkErrorReply: Equatable {
    /// 0 for an acknowledgement, otherwise a negative errno.
    public var error: Int32
    /// The header of the request this answers.
    public var request: NetlinkHeader
    /// `NLMSGERR_ATTR_MSG`: the kernel's explanation.
    public var message: String?
    /// `NLMSGERR_ATTR_OFFS`: byte offset of the offending attribute in the request.
    public var offset: UInt32?

    public init?(_ msg: NetlinkMessage) {
        let p = msg.payload
        guard p.count >= 4 + NetlinkHeader.size, let req = NetlinkHeader(p, at: 4) else { return nil }
        error = p.loadUnaligned(as: Int32.self)
        request = req
        guard msg.header.flags.contains(.ackTLVs) else { return }
        // With NLM_F_CAPPED only the request's header is echoed, otherwise the whole request.
        var tlvStart = 4 + NetlinkHeader.size
        if !msg.header.flags.contains(.capped) { tlvStart = 4 + netlinkAlign(Int(req.length)) }
        guard tlvStart <= p.count else { return }
        for a in AttributeSequence(UnsafeRawBufferPointer(rebasing: p[tlvStart...])) {
            switch a.type {
            case 1: message = a.string()        // NLMSGERR_ATTR_MSG
            case 2: offset = a.uint32()         // NLMSGERR_ATTR_OFFS
            default: break
            }
        }
    }
}
