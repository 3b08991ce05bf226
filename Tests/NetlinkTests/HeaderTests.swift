import Testing
@testable import Netlink
@testable import SockDiag
import CLinuxUAPI
#if canImport(Glibc)
import Glibc
#endif

/// Golden bytes, checked field by field against include/uapi/linux/netlink.h, inet_diag.h, unix_diag.h.
@Suite struct WireTests {
    @Test func headerRoundTrip() {
        let h = NetlinkHeader(length: 0x48, type: 20, flags: [.request, .dump], sequence: 7, pid: 0)
        var out: [UInt8] = []
        h.write(into: &out)
        #expect(out == [0x48, 0, 0, 0, 20, 0, 0x01, 0x03, 7, 0, 0, 0, 0, 0, 0, 0])
        let back = out.withUnsafeBytes { NetlinkHeader($0) }
        #expect(back == h)
        #expect([UInt8](repeating: 0, count: 15).withUnsafeBytes { NetlinkHeader($0) } == nil)
    }

    @Test func inetDiagDumpRequestGoldenBytes() {
        var req = InetDiagRequest(family: UInt8(AF_INET), ipProtocol: UInt8(IPPROTO_TCP), states: SocketState.established.mask)
        req.extensions = [.info, .congestion]
        var msg = NetlinkRequest(type: SockDiagConstants.sockDiagByFamily, flags: [.request, .dump], payload: req.bytes)
        msg.attributes.append(type: SockDiagConstants.InetRequestAttribute.bytecode, payload: [1, 2, 3, 4, 5])
        let bytes = msg.encode(sequence: 1)
        let expected: [UInt8] =
            [84, 0, 0, 0, 20, 0, 0x01, 0x03, 1, 0, 0, 0, 0, 0, 0, 0]          // nlmsghdr: len 16+56+12
            + [2, 6, 0x0a, 0]                                                  // AF_INET, TCP, ext INFO|CONG, pad
            + [2, 0, 0, 0]                                                     // states: 1 << ESTABLISHED
            + [0, 0, 0, 0] + [UInt8](repeating: 0, count: 32)                  // ports, src, dst
            + [0, 0, 0, 0] + [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]  // if, cookie = INET_DIAG_NOCOOKIE
            + [9, 0, 1, 0, 1, 2, 3, 4, 5, 0, 0, 0]                             // INET_DIAG_REQ_BYTECODE, padded
        #expect(bytes == expected)
    }

    @Test func unixDiagRequestGoldenBytes() {
        let req = UnixDiagRequest(states: SocketState.listen.mask)
        #expect(req.bytes == [1, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0x55, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
    }

    /// An `inet_diag_msg` for 10.0.0.1:443 <- 10.0.0.2:51000 with mark and cgroup attributes.
    static let inetReply: [UInt8] =
        [2, 1, 0, 0]                                            // AF_INET, ESTABLISHED, timer, retrans
        + [0x01, 0xbb, 0xc7, 0x38]                              // sport 443, dport 51000 (big endian)
        + [10, 0, 0, 1] + [UInt8](repeating: 0, count: 12)      // src
        + [10, 0, 0, 2] + [UInt8](repeating: 0, count: 12)      // dst
        + [3, 0, 0, 0]                                          // if 3
        + [0x78, 0x56, 0x34, 0x12, 0x01, 0, 0, 0]               // cookie 0x1_12345678
        + [0, 0, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0]                  // expires, rqueue 5, wqueue 6
        + [0xe8, 0x03, 0, 0, 0x39, 0x30, 0, 0]                  // uid 1000, inode 12345
        + [8, 0, 15, 0, 0x10, 0, 0, 0]                          // INET_DIAG_MARK 0x10
        + [12, 0, 21, 0, 0x2a, 0, 0, 0, 0, 0, 0, 0]             // INET_DIAG_CGROUP_ID 42
        + [9, 0, 4, 0, 0x62, 0x62, 0x72, 0, 0, 0, 0, 0]         // INET_DIAG_CONG "bbr"

    @Test func inetDiagReplyDecodes() throws {
        let s = try Self.inetReply.withUnsafeBytes { try Socket(inetDiag: $0, kind: .tcp) }
        #expect(s.family == UInt8(AF_INET))
        #expect(s.state == .established)
        #expect(s.source?.description == "10.0.0.1" && s.sourcePort == 443)
        #expect(s.destination?.description == "10.0.0.2" && s.destinationPort == 51000)
        #expect(s.interfaceIndex == 3 && s.cookie == 0x1_1234_5678)
        #expect(s.receiveQueue == 5 && s.sendQueue == 6 && s.uid == 1000 && s.inode == 12345)
        #expect(s.mark == 0x10 && s.cgroupID == 42 && s.congestion == "bbr")
        // The id round-trips through the request encoder.
        var out: [UInt8] = []
        let id = Self.inetReply.withUnsafeBytes { InetSocketID($0, at: 4, family: 2) }
        id.write(into: &out)
        #expect(out == Array(Self.inetReply[4..<52]))
    }

    @Test func shortReplyIsAnError() {
        #expect(throws: SockDiagDecodeError.self) {
            try Array(Self.inetReply.prefix(40)).withUnsafeBytes { _ = try Socket(inetDiag: $0, kind: .tcp) }
        }
    }

    @Test func unixReplyDecodesAbstractNameAndPeer() throws {
        let bytes: [UInt8] = [1, 1, 10, 0] + [0x39, 0x30, 0, 0] + [7, 0, 0, 0, 0, 0, 0, 0]   // AF_UNIX, STREAM, LISTEN, ino 12345, cookie 7
            + [7, 0, 0, 0, 0, 0x61, 0x62, 0]                                                  // UNIX_DIAG_NAME "\0ab" + pad
            + [8, 0, 2, 0, 0x3a, 0x30, 0, 0]                                                  // UNIX_DIAG_PEER 12346
            + [12, 0, 4, 0, 1, 0, 0, 0, 128, 0, 0, 0]                                         // RQLEN 1/128
        let s = try bytes.withUnsafeBytes { try Socket(unixDiag: $0) }
        #expect(s.kind == .stream && s.state == .listen && s.inode == 12345 && s.cookie == 7)
        #expect(s.path == "@ab" && s.peerInode == 12346 && s.receiveQueue == 1 && s.sendQueue == 128)
    }

    @Test func errorReplyCarriesExtendedAck() throws {
        // NLMSG_ERROR, flags CAPPED|ACK_TLVS: error -EINVAL, echoed request header, MSG + OFFS attributes.
        var bytes: [UInt8] = []
        NetlinkHeader(length: 0, type: NetlinkMessageType.error, flags: [.capped, .ackTLVs], sequence: 9).write(into: &bytes)
        bytes.appendInteger(Int32(-EINVAL))
        NetlinkHeader(length: 92, type: 20, flags: [.request, .dump], sequence: 9).write(into: &bytes)
        var attrs = AttributeWriter()
        attrs.append(type: 1, string: "bad bytecode")
        attrs.append(type: 2, integer: UInt32(72))
        bytes += attrs.bytes
        bytes.setInteger(UInt32(bytes.count), at: 0)
        var seen = 0
        try bytes.withUnsafeBytes { buf in
            try forEachMessage(in: buf) { msg in
                seen += 1
                let e = try #require(NetlinkErrorReply(msg))
                #expect(e.error == -EINVAL && e.request.sequence == 9 && e.message == "bad bytecode" && e.offset == 72)
            }
        }
        #expect(seen == 1)
    }

    @Test func misleadingLengthIsRejected() {
        var bytes: [UInt8] = []
        NetlinkHeader(length: 200, type: 20, flags: [.multi], sequence: 1).write(into: &bytes)
        bytes += [0, 0, 0, 0]
        #expect(throws: NetlinkError.self) {
            try bytes.withUnsafeBytes { try forEachMessage(in: $0) { _ in } }
        }
    }

    @Test func truncatedAttributeStopsIteration() {
        let bytes: [UInt8] = [8, 0, 1, 0, 1, 0, 0, 0, 40, 0, 2, 0, 9]
        bytes.withUnsafeBytes { buf in
            var it = AttributeSequence(buf).makeIterator()
            #expect(it.next()?.uint32() == 1)
            #expect(it.next() == nil)
            #expect(it.isTruncated)
        }
    }

    @Test func tcpInfoLayoutMatchesKernel() {
        // Offsets from include/uapi/linux/tcp.h: 8 bytes of u8/bitfields, then u32s, u64s from tcpi_pacing_rate.
        #expect(MemoryLayout<sockctl_tcp_info>.offset(of: \.tcpi_rto) == 8)
        #expect(MemoryLayout<sockctl_tcp_info>.offset(of: \.tcpi_rtt) == 68)
        #expect(MemoryLayout<sockctl_tcp_info>.offset(of: \.tcpi_pacing_rate) == 104)
        #expect(MemoryLayout<sockctl_tcp_info>.offset(of: \.tcpi_delivery_rate) == 160)
        #expect(MemoryLayout<sockctl_tcp_info>.offset(of: \.tcpi_snd_wnd) == 228)
        #expect(MemoryLayout<sockctl_tcp_info>.size == 232)
    }
}
