/// Netlink attributes (`struct nlattr` / `struct rtattr`: u16 length including the 4-byte header,
/// u16 type, payload padded to 4 bytes).
public struct NetlinkAttribute {
    /// The type with `NLA_F_NESTED` / `NLA_F_NET_BYTEORDER` cleared.
    public var type: UInt16
    public var rawType: UInt16
    public var payload: UnsafeRawBufferPointer

    public var isNested: Bool { rawType & 0x8000 != 0 }

    public func uint8() -> UInt8? { payload.count >= 1 ? payload[0] : nil }
    public func uint16() -> UInt16? { payload.count >= 2 ? payload.loadUnaligned(as: UInt16.self) : nil }
    public func uint32() -> UInt32? { payload.count >= 4 ? payload.loadUnaligned(as: UInt32.self) : nil }
    public func uint64() -> UInt64? { payload.count >= 8 ? payload.loadUnaligned(as: UInt64.self) : nil }
    /// A NUL-terminated (or unterminated) string payload.
    public func string() -> String {
        let end = payload.firstIndex(of: 0) ?? payload.count
        return String(decoding: UnsafeRawBufferPointer(rebasing: payload[0..<end]), as: UTF8.self)
    }
    /// The attributes nested inside this one.
    public var nested: AttributeSequence { AttributeSequence(payload) }
}

/// Iterates the attributes packed in a buffer. A malformed trailer (length below 4 or past the end)
/// stops the iteration and sets `isTruncated` instead of reading out of bounds.
public struct AttributeSequence: Sequence {
    public let buffer: UnsafeRawBufferPointer
    public init(_ buffer: UnsafeRawBufferPointer) { self.buffer = buffer }

    public struct Iterator: IteratorProtocol {
        let buffer: UnsafeRawBufferPointer
        var offset = 0
        public private(set) var isTruncated = false

        public mutating func next() -> NetlinkAttribute? {
            guard buffer.count - offset >= 4 else {
                if offset < buffer.count { isTruncated = true }
                return nil
            }
            let len = Int(buffer.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
            let rawType = buffer.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self)
            guard len >= 4, offset + len <= buffer.count else {
                isTruncated = true
                return nil
            }
            let payload = UnsafeRawBufferPointer(rebasing: buffer[(offset + 4)..<(offset + len)])
            offset += netlinkAlign(len)
            return NetlinkAttribute(type: rawType & 0x3fff, rawType: rawType, payload: payload)
        }
    }

    public func makeIterator() -> Iterator { Iterator(buffer: buffer) }

    /// The first attribute of a type, if any.
    public func first(type: UInt16) -> NetlinkAttribute? {
        for a in self where a.type == type { return a }
        return nil
    }
}

/// Appends attributes to a message being built.
public struct AttributeWriter {
    public private(set) var bytes: [UInt8] = []
    public init() {}

    public mutating func append(type: UInt16, payload: [UInt8]) {
        bytes.appendInteger(UInt16(4 + payload.count))
        bytes.appendInteger(type)
        bytes.append(contentsOf: payload)
        bytes.padToAlignment()
    }

    public mutating func append<T: FixedWidthInteger>(type: UInt16, integer: T) {
        var p: [UInt8] = []
        p.appendInteger(integer)
        append(type: type, payload: p)
    }

    public mutating func append(type: UInt16, string: String) {
        append(type: type, payload: Array(string.utf8) + [0])
    }
}
