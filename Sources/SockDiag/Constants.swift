/// sock_diag numbers from include/uapi/linux/sock_diag.h, inet_diag.h and unix_diag.h, in one place.
public enum SockDiagConstants {
    /// Message types on `NETLINK_SOCK_DIAG`.
    public static let sockDiagByFamily: UInt16 = 20
    /// Legacy TCP dump request (`struct inet_diag_req`); dumps both families in one walk.
    public static let tcpDiagGetSock: UInt16 = 18
    public static let sockDestroy: UInt16 = 21

    /// `enum { INET_DIAG_* }`: reply attributes.
    public enum InetAttribute {
        public static let memInfo: UInt16 = 1
        public static let info: UInt16 = 2
        public static let vegasInfo: UInt16 = 3
        public static let congestion: UInt16 = 4
        public static let tos: UInt16 = 5
        public static let tclass: UInt16 = 6
        public static let skMemInfo: UInt16 = 7
        public static let shutdown: UInt16 = 8
        public static let dctcpInfo: UInt16 = 9
        public static let `protocol`: UInt16 = 10
        public static let v6Only: UInt16 = 11
        public static let mark: UInt16 = 15
        public static let bbrInfo: UInt16 = 16
        public static let classID: UInt16 = 17
        public static let cgroupID: UInt16 = 21
    }

    /// `INET_DIAG_REQ_*`: request attributes.
    public enum InetRequestAttribute {
        public static let bytecode: UInt16 = 1
        public static let protocolNumber: UInt16 = 3
    }

    /// `UDIAG_SHOW_*` bits for `unix_diag_req.udiag_show`.
    public enum UnixShow {
        public static let name: UInt32 = 0x01
        public static let vfs: UInt32 = 0x02
        public static let peer: UInt32 = 0x04
        public static let icons: UInt32 = 0x08
        public static let rqlen: UInt32 = 0x10
        public static let memInfo: UInt32 = 0x20
        public static let uid: UInt32 = 0x40
    }

    /// `UNIX_DIAG_*`: unix reply attributes.
    public enum UnixAttribute {
        public static let name: UInt16 = 0
        public static let vfs: UInt16 = 1
        public static let peer: UInt16 = 2
        public static let icons: UInt16 = 3
        public static let rqlen: UInt16 = 4
        public static let memInfo: UInt16 = 5
        public static let shutdown: UInt16 = 6
        public static let uid: UInt16 = 7
    }

    /// `SKNLGRP_*` multicast groups that report destroyed sockets.
    public enum Group {
        public static let inetTCPDestroy: UInt32 = 1
        public static let inetUDPDestroy: UInt32 = 2
        public static let inet6TCPDestroy: UInt32 = 3
        public static let inet6UDPDestroy: UInt32 = 4
    }

    /// Size of `struct inet_diag_req_v2`, `struct inet_diag_msg`, `struct unix_diag_req`, `struct unix_diag_msg`.
    public static let inetRequestSize = 56
    public static let inetMessageSize = 72
    public static let unixRequestSize = 24
    public static let unixMessageSize = 16
}

/// Which optional reply attributes to ask for: bits of `inet_diag_req_v2.idiag_ext`,
/// bit `(INET_DIAG_X - 1)` asks for attribute `INET_DIAG_X`.
public struct InetDiagExtensions: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let memInfo = InetDiagExtensions(rawValue: 1 << 0)
    public static let info = InetDiagExtensions(rawValue: 1 << 1)
    public static let vegasInfo = InetDiagExtensions(rawValue: 1 << 2)
    public static let congestion = InetDiagExtensions(rawValue: 1 << 3)
    public static let tos = InetDiagExtensions(rawValue: 1 << 4)
    public static let tclass = InetDiagExtensions(rawValue: 1 << 5)
    public static let skMemInfo = InetDiagExtensions(rawValue: 1 << 6)
}
