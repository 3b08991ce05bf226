import Testing
@testable import SockDiag
#if canImport(Glibc)
import Glibc
#endif

/// ByteWriter keeps its bytes in memory of its own: growth, in-place edits and number formatting
/// are checked against plain strings.
@Suite struct ByteWriterTests {
    @Test func numbersAndText() {
        var w = ByteWriter(formattingInMemory: 16)
        w.write(0 as Int); w.write(" "); w.write(9 as UInt8); w.write(" "); w.write(10 as UInt16)
        w.write(" "); w.write(-42 as Int32); w.write(" "); w.write(UInt64.max); w.write(" "); w.write(Int64.min)
        w.write(" " as StaticString); w.write(byte: UInt8(ascii: "x")); w.write(byte: UInt8(ascii: "y")); w.write(byte: UInt8(ascii: "z"))
        #expect(w.string == "0 9 10 -42 18446744073709551615 -9223372036854775808 xyz")
        #expect(w.count == w.string.utf8.count)
        #expect(w.string.utf8.last == UInt8(ascii: "z"))
    }

    @Test func growsPastItsFirstCapacity() {
        var w = ByteWriter(formattingInMemory: 16)
        var expected = ""
        for i in 0..<5_000 {
            w.write(i); w.write(",")
            expected += "\(i),"
        }
        #expect(w.string == expected)
    }

    @Test func editsInPlace() {
        var w = ByteWriter(formattingInMemory: 8)
        w.write("ab")
        w.insertSpaces(3, at: 1)          // grows, moves "b"
        #expect(w.string == "a   b")
        w.insertSpaces(2, at: w.count)    // at the end
        w.pad(1)
        #expect(w.string == "a   b   ")
        w.trimTrailingSpaces()
        #expect(w.string == "a   b")
        w.removeLast(2)
        #expect(w.string == "a  ")
        var other = ByteWriter(formattingInMemory: 4)
        other.write("[tail]")
        w.write(contentsOf: other)
        #expect(w.string == "a  [tail]")
        #expect(w.count == "a  [tail]".utf8.count)
    }

    @Test func addressesAndJSON() {
        var w = ByteWriter(formattingInMemory: 4)
        w.write(address: InetAddress("10.213.0.1")!); w.write(" ")
        w.write(address: InetAddress("fd20::2")!); w.write(" ")
        w.write(jsonString: "a\"b\\c\nd\u{1}")
        #expect(w.string == "10.213.0.1 fd20::2 \"a\\\"b\\\\c\\nd\\u0001\"")
    }

    @Test func flushesToADescriptorAndStartsOver() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        var w = ByteWriter(fd: fds[1], flushThreshold: 8)
        w.write("0123456789")
        try w.flushIfNeeded()
        #expect(w.count == 0)
        w.write("ab")
        try w.flush()
        close(fds[1])
        var buf = [UInt8](repeating: 0, count: 64)
        let n = read(fds[0], &buf, buf.count)
        #expect(String(decoding: buf[0..<max(0, n)], as: UTF8.self) == "0123456789ab")
    }
}
