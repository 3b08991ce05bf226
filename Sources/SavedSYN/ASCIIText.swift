/// Writes short ASCII texts (signatures, fingerprints) into a stack buffer and makes one String at the
/// end: no intermediate arrays or strings, one allocation at most (none up to 15 bytes).
struct ASCIIText {
    static let capacity = 512
    let p: UnsafeMutablePointer<UInt8>
    var count = 0

    /// Calls `body` with an empty writer; returns what it wrote.
    static func make(_ body: (inout ASCIIText) -> Void) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: capacity) { buf in
            var w = ASCIIText(p: buf.baseAddress!)
            body(&w)
            return String(decoding: UnsafeBufferPointer(start: buf.baseAddress!, count: w.count), as: UTF8.self)
        }
    }

    /// Appends a byte; bytes past the capacity are dropped (callers stay far below it).
    mutating func byte(_ b: UInt8) {
        guard count < Self.capacity else { return }
        p[count] = b
        count += 1
    }

    mutating func text(_ s: StaticString) {
        s.withUTF8Buffer { for b in $0 { byte(b) } }
    }

    /// Decimal digits of `v` (a minus sign when negative).
    mutating func number<T: BinaryInteger>(_ v: T) {
        var m = Int64(v)
        if m < 0 { byte(UInt8(ascii: "-")); m = -m }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[n] = UInt8(48 + m % 10)
                m /= 10
                n += 1
            } while m > 0
        }
        withUnsafeBytes(of: &digits) { d in
            while n > 0 {
                n -= 1
                byte(d[n])
            }
        }
    }
}
