/// The fixed header in front of every netlink message; mirrors `struct nlmsghdr` (16 bytes, host order).
public struct NetlinkHeader: Equatable, Sendable {
    public static let size = 16
    public var length: UInt32
    public var type: UInt16
    public var flags: NetlinkFlags
    public var sequence: UInt32
    public var pid: UInt32

    public init(length: UInt32 = 0, type: UInt16, flags: NetlinkFlags, sequence: UInt32 = 0, pid: UInt32 = 0) {
        self.length = length
        self.type = type
        self.flags = flags
        self.sequence = sequence
        self.pid = pid
    }

    /// Reads a header at `offset`; nil when fewer than 16 bytes remain.
    public init?(_ buf: UnsafeRawBufferPointer, at offset: Int = 0) {
        guard offset >= 0, buf.count - offset >= Self.size else { return nil }
        length = buf.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
        type = buf.loadUnaligned(fromByteOffset: offset + 4, as: UInt16.self)
        flags = NetlinkFlags(rawValue: buf.loadUnaligned(fromByteOffset: offset + 6, as: UInt16.self))
        sequence = buf.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self)
        pid = buf.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)
    }

    /// Appends the 16 header bytes.
    public func write(into out: inout [UInt8]) {
        out.appendBytes(count: Self.size) { p in
            p.storeBytes(of: length, toByteOffset: 0, as: UInt32.self)
            p.storeBytes(of: type, toByteOffset: 4, as: UInt16.self)
            p.storeBytes(of: flags.rawValue, toByteOffset: 6, as: UInt16.self)
            p.storeBytes(of: sequence, toByteOffset: 8, as: UInt32.self)
            p.storeBytes(of: pid, toByteOffset: 12, as: UInt32.self)
        }
    }
}

/// Message types every netlink family shares (`NLMSG_*`).
public enum NetlinkMessageType {
    public static let noop: UInt16 = 1
    public static let error: UInt16 = 2
    public static let done: UInt16 = 3
    public static let overrun: UInt16 = 4
}

/// `nlmsghdr.nlmsg_flags` (`NLM_F_*`). Some bits mean different things on requests and replies.
public struct NetlinkFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let request = NetlinkFlags(rawValue: 0x01)
    public static let multi = NetlinkFlags(rawValue: 0x02)
    public static let ack = NetlinkFlags(rawValue: 0x04)
    public static let echo = NetlinkFlags(rawValue: 0x08)
    /// On a reply: the dump was interrupted because the kernel's table changed; its result may be inconsistent.
    public static let dumpInterrupted = NetlinkFlags(rawValue: 0x10)
    public static let dumpFiltered = NetlinkFlags(rawValue: 0x20)
    /// GET requests: `NLM_F_ROOT | NLM_F_MATCH`.
    public static let root = NetlinkFlags(rawValue: 0x100)
    public static let match = NetlinkFlags(rawValue: 0x200)
    public static let dump: NetlinkFlags = [.root, .match]
    /// On an `NLMSG_ERROR` reply: the original request was cut to its header.
    public static let capped = NetlinkFlags(rawValue: 0x100)
    /// On an `NLMSG_ERROR` reply: extended-ack attributes follow.
    public static let ackTLVs = NetlinkFlags(rawValue: 0x200)

    public var description: String {
        var parts: [String] = []
        let names: [(NetlinkFlags, String)] = [(.request, "request"), (.multi, "multi"), (.ack, "ack"),
                                               (.echo, "echo"), (.dumpInterrupted, "dump-intr"),
                                               (.dumpFiltered, "dump-filtered")]
        for (f, n) in names where contains(f) { parts.append(n) }
        let rest = rawValue & ~0x3f
        if rest != 0 { parts.append("0x" + String(rest, radix: 16)) }
        return parts.isEmpty ? "none" : parts.joined(separator: "|")
    }
}

extension Array where Element == UInt8 {
    /// Appends an integer's bytes in host (little-endian on Linux targets) order.
    @inlinable
    public mutating func appendInteger<T: FixedWidthInteger>(_ v: T) {
        Swift.withUnsafeBytes(of: v) { append(contentsOf: $0) }
    }

    /// Appends `count` zero bytes and lets `body` store into them: one capacity check for a whole
    /// fixed-layout struct instead of one append per field (destroy batches write thousands).
    @inlinable
    public mutating func appendBytes(count: Int, _ body: (UnsafeMutableRawBufferPointer) -> Void) {
        let start = self.count
        append(contentsOf: repeatElement(0, count: count))
        withUnsafeMutableBytes { body(UnsafeMutableRawBufferPointer(rebasing: $0[start...])) }
    }

    /// Pads with zero bytes up to the next multiple of 4 (`NLMSG_ALIGN`, `RTA_ALIGN`).
    @inlinable
    public mutating func padToAlignment() {
        while count % 4 != 0 { append(0) }
    }

    /// Overwrites an integer in place at `offset`.
    @inlinable
    public mutating func setInteger<T: FixedWidthInteger>(_ v: T, at offset: Int) {
        Swift.withUnsafeBytes(of: v) { src in
            for i in 0..<src.count { self[offset + i] = src[i] }
        }
    }
}

/// Rounds a length up to netlink's 4-byte alignment.
@inlinable
public func netlinkAlign(_ n: Int) -> Int { (n + 3) & ~3 }
