import CLinuxUAPI
#if canImport(Glibc)
import Glibc
#endif

/// A byte buffer that output is formatted into and flushed to a file descriptor in large writes.
/// Formatting numbers and addresses straight into bytes keeps printing 100,000 sockets cheap.
public struct ByteWriter {
    public var bytes: [UInt8] = []
    public let fd: Int32
    public let flushThreshold: Int

    public init(fd: Int32 = 1, flushThreshold: Int = 64 << 10) {
        self.fd = fd
        self.flushThreshold = flushThreshold
        bytes.reserveCapacity(flushThreshold + 4096)
    }

    /// A writer that only formats into `bytes` (never flushed to a descriptor), starting with room
    /// for `capacity` bytes: one JSON record or line, not a 64 KiB output buffer each time.
    public init(formattingInMemory capacity: Int) {
        fd = -1
        flushThreshold = Int.max
        bytes.reserveCapacity(capacity)
    }

    @inlinable public mutating func write(_ s: String) {
        var s = s
        s.withUTF8 { bytes.append(contentsOf: $0) }
    }
    @inlinable public mutating func write(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }
    @inlinable public mutating func write(byte: UInt8) { bytes.append(byte) }
    @inlinable public mutating func write<S: Sequence>(bytes seq: S) where S.Element == UInt8 { bytes.append(contentsOf: seq) }

    /// Decimal digits of an integer, no allocation. Inlinable so that callers in other modules get
    /// a version for their concrete type rather than the generic one (BinaryInteger witness calls
    /// per digit).
    @inlinable public mutating func write<T: BinaryInteger>(_ v: T) {
        if T.isSigned && v < 0 {
            bytes.append(UInt8(ascii: "-"))
            write(decimal: UInt64(v.magnitude))
        } else {
            write(decimal: UInt64(v))
        }
    }

    /// Decimal digits of `n`.
    public mutating func write(decimal n: UInt64) {
        if n < 10 { bytes.append(UInt8(truncatingIfNeeded: 48 &+ n)); return }
        var n = n
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { t in
            var i = 24
            while n > 0 { i -= 1; t[i] = UInt8(truncatingIfNeeded: 48 &+ n % 10); n /= 10 }
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: t[i..<24]))
        }
    }

    /// Writes `n` spaces.
    public mutating func pad(_ n: Int) {
        if n > 0 { bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: n)) }
    }

    /// An address in text form: dotted quad for IPv4 (fast path), inet_ntop for IPv6.
    public mutating func write(address a: InetAddress) {
        if a.isIPv4 {
            let w = a.bytes.0
            for i in 0..<4 {
                if i > 0 { bytes.append(UInt8(ascii: ".")) }
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
                    bytes.append(contentsOf: UnsafeRawBufferPointer(start: out.baseAddress, count: strlen(p)))
                }
            }
        }
    }

    /// A JSON string literal with the required escapes.
    public mutating func write(jsonString s: String) {
        bytes.append(UInt8(ascii: "\""))
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
                bytes.append(hex[Int(b >> 4)]); bytes.append(hex[Int(b & 15)])
            default: bytes.append(b)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// Flushes once the buffer is past the threshold.
    @inlinable public mutating func flushIfNeeded() throws {
        if bytes.count >= flushThreshold { try flush() }
    }

    /// Writes everything buffered. EPIPE (the reader went away, e.g. `| head`) is thrown as is.
    public mutating func flush() throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 {
                if errno == EINTR { continue }
                throw WriteError(errno: errno)
            }
            off += n
        }
        bytes.removeAll(keepingCapacity: true)
    }

    public struct WriteError: Error { public var errno: Int32 }
}
