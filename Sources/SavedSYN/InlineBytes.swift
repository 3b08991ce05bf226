/// Up to 40 bytes kept in the value itself, never on the heap: 40 is the most an IPv4 or a TCP option
/// area can hold (15 or 15 words of header minus the fixed 20 bytes), so it also bounds the number of
/// options in either. The fast parse path (`SYNHeaders`) uses it for option bytes, option kinds and
/// option offsets, so that parsing a SYN allocates nothing.
///
/// Lanes past `count` are always zero, so equality and hashing may look at the whole vector.
public struct InlineBytes: Hashable, Sendable, RandomAccessCollection, ExpressibleByArrayLiteral,
    CustomStringConvertible
{
    public static let capacity = 40

    @usableFromInline var lanes: SIMD64<UInt8> = .zero
    @usableFromInline var length: UInt8 = 0

    @inlinable public init() {}

    /// The first `capacity` bytes of `bytes`.
    @inlinable public init<S: Sequence>(_ bytes: S) where S.Element == UInt8 {
        for b in bytes {
            if Int(length) == Self.capacity { break }
            append(b)
        }
    }

    public init(arrayLiteral elements: UInt8...) { self.init(elements) }

    /// Copies `count` bytes from `p` at `offset` (the caller has checked they are there and that
    /// `count <= capacity`).
    @inlinable init(_ p: UnsafeRawBufferPointer, from offset: Int, count: Int) {
        var i = 0
        while i < count {
            lanes[i] = p[offset + i]
            i += 1
        }
        length = UInt8(truncatingIfNeeded: count)
    }

    /// Appends a byte; a full buffer drops it (callers never pass more than `capacity`).
    @inlinable public mutating func append(_ b: UInt8) {
        guard Int(length) < Self.capacity else { return }
        lanes[Int(length)] = b
        length &+= 1
    }

    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { Int(length) }
    @inlinable public var count: Int { Int(length) }
    @inlinable public subscript(i: Int) -> UInt8 {
        precondition(i >= 0 && i < Int(length), "InlineBytes index \(i) out of range 0..<\(length)")
        return lanes[i]
    }

    public var description: String { Array(self).description }
}
