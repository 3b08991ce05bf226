/// The fixed header in front of every netlink message; mirrors `struct nlmsghdr` (16 bytes, host order).
public struct NetlinkHeader: Equatable, Sendable {
    public static let size = 16
    public var length: UInt32
    public var type: UInt16
    public var flags: UInt16
    public var sequence: UInt32
    public var pid: UInt32

    public init(length: UInt32 = 0, type: UInt16, flags: UInt16, sequence: UInt32 = 0, pid: UInt32 = 0) {
        self.length = length
        self.type = type
        self.flags = flags
        self.sequence = sequence
        self.pid = pid
    }
}
