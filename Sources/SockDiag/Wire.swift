import CLinuxUAPI
import Netlink
#if canImport(Glibc)
import Glibc
#endif

/// `struct inet_diag_sockid` as a value: ports in host order, addresses as `InetAddress`.
public struct InetSocketID: Hashable, Sendable {
    public var sourcePort: UInt16 = 0
    public var destinationPort: UInt16 = 0
    public var source: InetAddress
    public var destination: InetAddress
    public var interfaceIndex: UInt32 = 0
    /// `INET_DIAG_NOCOOKIE` (all ones) means "any".
    public var cookie: UInt64 = ~0

    public init(family: UInt8) {
        source = InetAddress(family: family, bytes: (0, 0))
        destination = InetAddress(family: family, bytes: (0, 0))
    }

    /// The 48 wire bytes: be16 sport, be16 dport, 16 bytes src, 16 bytes dst, u32 if, u32 cookie[2].
    public func write(into out: inout [UInt8]) {
        out.appendBytes(count: 48) { p in
            p.storeBytes(of: sourcePort.bigEndian, toByteOffset: 0, as: UInt16.self)
            p.storeBytes(of: destinationPort.bigEndian, toByteOffset: 2, as: UInt16.self)
            p.storeBytes(of: source.bytes.0, toByteOffset: 4, as: UInt64.self)
            p.storeBytes(of: source.bytes.1, toByteOffset: 12, as: UInt64.self)
            p.storeBytes(of: destination.bytes.0, toByteOffset: 20, as: UInt64.self)
            p.storeBytes(of: destination.bytes.1, toByteOffset: 28, as: UInt64.self)
            p.storeBytes(of: interfaceIndex, toByteOffset: 36, as: UInt32.self)
            p.storeBytes(of: UInt32(truncatingIfNeeded: cookie), toByteOffset: 40, as: UInt32.self)
            p.storeBytes(of: UInt32(truncatingIfNeeded: cookie >> 32), toByteOffset: 44, as: UInt32.self)
        }
    }

    /// Reads the 48 bytes at `offset` for a socket of `family`.
    public init(_ b: UnsafeRawBufferPointer, at o: Int, family: UInt8) {
        sourcePort = UInt16(bigEndian: b.loadUnaligned(fromByteOffset: o, as: UInt16.self))
        destinationPort = UInt16(bigEndian: b.loadUnaligned(fromByteOffset: o + 2, as: UInt16.self))
        var src: (UInt64, UInt64) = (b.loadUnaligned(fromByteOffset: o + 4, as: UInt64.self),
                                     b.loadUnaligned(fromByteOffset: o + 12, as: UInt64.self))
        var dst: (UInt64, UInt64) = (b.loadUnaligned(fromByteOffset: o + 20, as: UInt64.self),
                                     b.loadUnaligned(fromByteOffset: o + 28, as: UInt64.self))
        if family == UInt8(AF_INET) {
            // Only the first word carries an IPv4 address; the kernel leaves the rest zero but don't rely on it.
            src = (src.0 & 0xFFFF_FFFF, 0)
            dst = (dst.0 & 0xFFFF_FFFF, 0)
        }
        source = InetAddress(family: family, bytes: src)
        destination = InetAddress(family: family, bytes: dst)
        interfaceIndex = b.loadUnaligned(fromByteOffset: o + 36, as: UInt32.self)
        let lo = b.loadUnaligned(fromByteOffset: o + 40, as: UInt32.self)
        let hi = b.loadUnaligned(fromByteOffset: o + 44, as: UInt32.self)
        cookie = UInt64(hi) << 32 | UInt64(lo)
    }
}

/// `struct inet_diag_req_v2`: a dump (or destroy) request for inet sockets.
public struct InetDiagRequest: Sendable {
    public var family: UInt8
    public var ipProtocol: UInt8
    public var extensions: InetDiagExtensions = []
    /// `sdiag_raw_protocol` (the pad byte): which raw sockets; IPPROTO_RAW = all.
    public var rawProtocol: UInt8 = 0
    public var states: UInt32 = SocketState.allMask
    public var id: InetSocketID

    public init(family: UInt8, ipProtocol: UInt8, states: UInt32 = SocketState.allMask) {
        self.family = family
        self.ipProtocol = ipProtocol
        self.states = states
        id = InetSocketID(family: family)
        if ipProtocol == UInt8(IPPROTO_RAW) { rawProtocol = UInt8(IPPROTO_RAW) }
    }

    /// The 56 bytes of the request struct.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(SockDiagConstants.inetRequestSize)
        write(into: &out)
        return out
    }

    /// Appends the 56 bytes of the request struct.
    public func write(into out: inout [UInt8]) {
        out.appendBytes(count: 8) { p in
            p[0] = family; p[1] = ipProtocol; p[2] = extensions.rawValue; p[3] = rawProtocol
            p.storeBytes(of: states, toByteOffset: 4, as: UInt32.self)
        }
        id.write(into: &out)
    }
}

/// `struct unix_diag_req`.
public struct UnixDiagRequest: Sendable {
    public var states: UInt32 = SocketState.allMask
    public var inode: UInt32 = 0
    public var show: UInt32 = SockDiagConstants.UnixShow.name | SockDiagConstants.UnixShow.peer
        | SockDiagConstants.UnixShow.rqlen | SockDiagConstants.UnixShow.uid
    public var cookie: UInt64 = ~0
    public init(states: UInt32 = SocketState.allMask) { self.states = states }

    public var bytes: [UInt8] {
        var out: [UInt8] = [UInt8(AF_UNIX), 0, 0, 0]
        out.appendInteger(states)
        out.appendInteger(inode)
        out.appendInteger(show)
        out.appendInteger(UInt32(truncatingIfNeeded: cookie))
        out.appendInteger(UInt32(truncatingIfNeeded: cookie >> 32))
        return out
    }
}

public enum SockDiagDecodeError: Error, CustomStringConvertible {
    case short(what: String, length: Int, needed: Int)
    public var description: String {
        switch self {
        case let .short(what, length, needed): return "\(what) reply of \(length) bytes, needs \(needed)"
        }
    }
}

extension Socket {
    /// Decodes an `inet_diag_msg` reply and its attributes. `kind` is the protocol the dump asked for.
    public init(inetDiag p: UnsafeRawBufferPointer, kind: SocketKind) throws {
        guard p.count >= SockDiagConstants.inetMessageSize else {
            throw SockDiagDecodeError.short(what: "inet_diag_msg", length: p.count, needed: SockDiagConstants.inetMessageSize)
        }
        let family = p[0]
        self.init(family: family, kind: kind, state: SocketState(rawValue: p[1]))
        timer = p[2]
        retransmits = p[3]
        let id = InetSocketID(p, at: 4, family: family)
        source = id.source
        sourcePort = id.sourcePort
        destination = id.destination
        destinationPort = id.destinationPort
        interfaceIndex = id.interfaceIndex
        cookie = id.cookie
        timerExpiresMs = p.loadUnaligned(fromByteOffset: 52, as: UInt32.self)
        receiveQueue = p.loadUnaligned(fromByteOffset: 56, as: UInt32.self)
        sendQueue = p.loadUnaligned(fromByteOffset: 60, as: UInt32.self)
        uid = p.loadUnaligned(fromByteOffset: 64, as: UInt32.self)
        inode = p.loadUnaligned(fromByteOffset: 68, as: UInt32.self)
        let attrs = UnsafeRawBufferPointer(rebasing: p[SockDiagConstants.inetMessageSize...])
        typealias A = SockDiagConstants.InetAttribute
        for a in AttributeSequence(attrs) {
            switch a.type {
            case A.info where kind == .tcp:
                if a.payload.count > 0 { tcpInfo = TCPInfo(bytes: a.payload) }
            case A.congestion: congestion = a.string()
            case A.skMemInfo: memInfo = SocketMemInfo(words: a.payload)
            case A.shutdown: shutdown = a.uint8()
            case A.mark: mark = a.uint32()
            case A.cgroupID: cgroupID = a.uint64()
            case A.protocol: rawProtocol = a.uint8() ?? 0
            default: break
            }
        }
    }

    /// Decodes a `unix_diag_msg` reply and its attributes.
    public init(unixDiag p: UnsafeRawBufferPointer) throws {
        guard p.count >= SockDiagConstants.unixMessageSize else {
            throw SockDiagDecodeError.short(what: "unix_diag_msg", length: p.count, needed: SockDiagConstants.unixMessageSize)
        }
        let kind: SocketKind
        switch Int32(p[1]) {
        case Int32(SOCK_STREAM.rawValue): kind = .stream
        case Int32(SOCK_DGRAM.rawValue): kind = .dgram
        default: kind = .seqpacket
        }
        self.init(family: UInt8(AF_UNIX), kind: kind, state: SocketState(rawValue: p[2]))
        inode = p.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
        let lo = p.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
        let hi = p.loadUnaligned(fromByteOffset: 12, as: UInt32.self)
        cookie = UInt64(hi) << 32 | UInt64(lo)
        typealias A = SockDiagConstants.UnixAttribute
        for a in AttributeSequence(UnsafeRawBufferPointer(rebasing: p[SockDiagConstants.unixMessageSize...])) {
            switch a.type {
            case A.name:
                // Abstract names start with a NUL byte; shown as '@' like ss does.
                if let first = a.payload.first, first == 0 {
                    path = "@" + String(decoding: a.payload.dropFirst(), as: UTF8.self)
                } else {
                    path = a.string()
                }
            case A.peer: peerInode = a.uint32()
            case A.rqlen:
                if a.payload.count >= 8 {
                    receiveQueue = a.payload.loadUnaligned(as: UInt32.self)
                    sendQueue = a.payload.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
                }
            case A.memInfo: memInfo = SocketMemInfo(words: a.payload)
            case A.shutdown: shutdown = a.uint8()
            case A.uid: uid = a.uint32() ?? 0
            default: break
            }
        }
    }
}

extension SocketMemInfo {
    /// Reads the `SK_MEMINFO_*` u32 array; missing trailing counters stay zero.
    init(words p: UnsafeRawBufferPointer) {
        self.init()
        func w(_ i: Int) -> UInt32 { p.count >= (i + 1) * 4 ? p.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self) : 0 }
        rmemAlloc = w(0); rcvbuf = w(1); wmemAlloc = w(2); sndbuf = w(3); fwdAlloc = w(4)
        wmemQueued = w(5); optmem = w(6); backlog = w(7); drops = w(8)
    }
}
