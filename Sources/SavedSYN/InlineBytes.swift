/// Up to 40 bytes kept in the value itself, never on the heap: 40 is the most an IPv4 or a TCP option
/// area can hold (15 words of header minus the fixed 20 bytes), so it also bounds the number of
/// options in either. The fast parse path (`SYNHeaders`) uses it for option bytes, option kinds and
/// option offsets, so that parsing a SYN allocates nothing.
///
/// Storage is five 64-bit words; bytes past `count` are always zero, so equality and hashing compare
/// whole words.
public struct InlineBytes: Hashable, Sendable, RandomAccessCollection, ExpressibleByArrayLiteral,
    CustomStringConvertible
{
    public static let capacity = 40

    @usableFromInline var words: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
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
        precondition(count >= 0 && count <= Self.capacity && offset >= 0 && offset + count <= p.count)
        if count > 0 {
            withUnsafeMutableBytes(of: &words) { w in
                w.baseAddress!.copyMemory(from: p.baseAddress! + offset, byteCount: count)
            }
        }
        length = UInt8(truncatingIfNeeded: count)
    }

    /// Appends a byte; a full buffer drops it (callers never pass more than `capacity`).
    @inlinable public mutating func append(_ b: UInt8) {
        let n = Int(length)
        guard n < Self.capacity else { return }
        withUnsafeMutableBytes(of: &words) { $0[n] = b }
        length &+= 1
    }

    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { Int(length) }
    @inlinable public var count: Int { Int(length) }
    @inlinable public subscript(i: Int) -> UInt8 {
        precondition(i >= 0 && i < Int(length), "InlineBytes index out of range")
        return Swift.withUnsafeBytes(of: words) { $0[i] }
    }

    @inlinable public static func == (a: InlineBytes, b: InlineBytes) -> Bool {
        a.length == b.length && a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2
            && a.words.3 == b.words.3 && a.words.4 == b.words.4
    }

    @inlinable public func hash(into h: inout Hasher) {
        h.combine(length)
        h.combine(words.0); h.combine(words.1); h.combine(words.2); h.combine(words.3); h.combine(words.4)
    }

    /// Calls `body` with the `count` bytes in place (no copy to the heap).
    @inlinable public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: words) { try body(UnsafeRawBufferPointer(rebasing: $0[0..<Int(length)])) }
    }

    public var description: String { Array(self).description }
}
