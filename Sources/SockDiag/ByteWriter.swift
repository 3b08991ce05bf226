import CLinuxUAPI
#if canImport(Glibc)
import Glibc
#endif

/// A byte buffer that output is formatted into and flushed to a file descriptor in large writes.
/// Formatting numbers and addresses straight into bytes keeps printing 100,000 sockets cheap.
///
/// The bytes live in memory of its own (not an Array): a write is a capacity check and a copy,
/// without the generic append machinery an Array runs per call (a socket's line is some twenty
/// writes). Not copyable: one owner, freed with it.
public struct ByteWriter: ~Copyable {
    @usableFromInline var base: UnsafeMutablePointer<UInt8>
    @usableFromInline var capacity: Int
    /// Bytes written and not yet flushed.
    @usableFromInline var _count: Int = 0
    public var count: Int { _count }
    public let fd: Int32
    public let flushThreshold: Int

    public init(fd: Int32 = 1, flushThreshold: Int = 64 << 10) {
        self.fd = fd
        self.flushThreshold = flushThreshold
        capacity = flushThreshold + 4096
        base = .allocate(capacity: capacity)
    }

    /// A writer that only formats into memory (never flushed to a descriptor), starting with room
    /// for `capacity` bytes: one JSON record or line, not a 64 KiB output buffer each time.
    public init(formattingInMemory capacity: Int) {
        fd = -1
        flushThreshold = Int.max
        self.capacity = max(16, capacity)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    /// Makes room for `n` more bytes.
    @inlinable mutating func reserve(_ n: Int) {
        if count + n > capacity { grow(to: count + n) }
    }

    @usableFromInline mutating func grow(to needed: Int) {
        let bigger = max(needed, capacity * 2)
        let fresh = UnsafeMutablePointer<UInt8>.allocate(capacity: bigger)
        fresh.initialize(from: base, count: count)
        base.deallocate()
        base = fresh
        capacity = bigger
    }

    /// Appends raw bytes.
    @inlinable public mutating func write(raw p: UnsafeRawBufferPointer) {
        guard let src = p.baseAddress, p.count > 0 else { return }
        reserve(p.count)
        UnsafeMutableRawPointer(base + count).copyMemory(from: src, byteCount: p.count)
        _count += p.count
    }

    @inlinable public mutating func write(_ s: String) {
        var s = s
        s.withUTF8 { write(raw: UnsafeRawBufferPointer($0)) }
    }
    @inlinable public mutating func write(_ s: StaticString) {
        s.withUTF8Buffer { write(raw: UnsafeRawBufferPointer($0)) }
    }
    @inlinable public mutating func write(byte: UInt8) {
        reserve(1)
        base[count] = byte
        _count += 1
    }
    /// Appends what `other` holds.
    public mutating func write(contentsOf other: borrowing ByteWriter) {
        write(raw: UnsafeRawBufferPointer(start: other.base, count: other.count))
    }

    /// The bytes written so far as UTF-8 text.
    public var string: String { String(decoding: UnsafeBufferPointer(start: base, count: count), as: UTF8.self) }

    /// Drops the last `n` bytes written.
    public mutating func removeLast(_ n: Int = 1) {
        precondition(n <= count, "removing more bytes than were written")
        _count -= n
    }

    /// Drops trailing spaces.
    public mutating func trimTrailingSpaces() {
        while count > 0 && base[count - 1] == UInt8(ascii: " ") { _count -= 1 }
    }

    /// Inserts `n` spaces at `offset` (at most `count`), moving what follows.
    public mutating func insertSpaces(_ n: Int, at offset: Int) {
        guard n > 0 else { return }
        precondition(offset >= 0 && offset <= count, "offset past the end")
        reserve(n)
        memmove(base + offset + n, base + offset, count - offset)
        (base + offset).update(repeating: UInt8(ascii: " "), count: n)
        _count += n
    }

    /// Decimal digits of an integer, no allocation. Inlinable so that callers in other modules get
    /// a version for their concrete type rather than the generic one (BinaryInteger witness calls
    /// per digit).
    @inlinable public mutating func write<T: BinaryInteger>(_ v: T) {
        if T.isSigned && v < 0 {
            write(byte: UInt8(ascii: "-"))
            write(decimal: UInt64(v.magnitude))
        } else {
            write(decimal: UInt64(v))
        }
    }

    /// Decimal digits of `n`.
    public mutating func write(decimal n: UInt64) {
        if n < 10 { write(byte: UInt8(truncatingIfNeeded: 48 &+ n)); return }
        var digits = 0
        var v = n
        while v > 0 { digits += 1; v /= 10 }
        reserve(digits)
        var i = count + digits
        v = n
        while v > 0 { i -= 1; base[i] = UInt8(truncatingIfNeeded: 48 &+ v % 10); v /= 10 }
        _count += digits
    }

    /// Writes `n` spaces.
    public mutating func pad(_ n: Int) {
        guard n > 0 else { return }
        reserve(n)
        (base + count).update(repeating: UInt8(ascii: " "), count: n)
        _count += n
    }

    /// An address in text form: dotted quad for IPv4 (fast path), inet_ntop for IPv6.
    public mutating func write(address a: InetAddress) {
        if a.isIPv4 {
            let w = a.bytes.0
            for i in 0..<4 {
                if i > 0 { write(byte: UInt8(ascii: ".")) }
                write(UInt8(truncatingIfNeeded: w >> (8 * UInt64(i))))
            }
            return
        }
        var copy = a.bytes
        var text: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &text) { out in
            withUnsafeBytes(of: &copy) { raw in
                let p = out.baseAddress!.assumingMemoryBound(to: CChar.self)
                if inet_ntop(AF_INET6, raw.baseAddress, p, socklen_t(out.count)) != nil {
                    write(raw: UnsafeRawBufferPointer(start: out.baseAddress, count: strlen(p)))
                }
            }
        }
    }

    /// A JSON string literal with the required escapes.
    public mutating func write(jsonString s: String) {
        write(byte: UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): write("\\\"" as StaticString)
            case UInt8(ascii: "\\"): write("\\\\" as StaticString)
            case UInt8(ascii: "\n"): write("\\n" as StaticString)
            case UInt8(ascii: "\r"): write("\\r" as StaticString)
            case UInt8(ascii: "\t"): write("\\t" as StaticString)
            case 0..<0x20:
                write("\\u00" as StaticString)
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                write(byte: hex[Int(b >> 4)]); write(byte: hex[Int(b & 15)])
            default: write(byte: b)
            }
        }
        write(byte: UInt8(ascii: "\""))
    }

    /// Flushes once the buffer is past the threshold.
    @inlinable public mutating func flushIfNeeded() throws {
        if count >= flushThreshold { try flush() }
    }

    /// Writes everything buffered. EPIPE (the reader went away, e.g. `| head`) is thrown as is.
    public mutating func flush() throws {
        var off = 0
        while off < count {
            let n = Glibc.write(fd, base + off, count - off)
            if n < 0 {
                if errno == EINTR { continue }
                throw WriteError(errno: errno)
            }
            off += n
        }
        _count = 0
    }

    public struct WriteError: Error { public var errno: Int32 }
}
