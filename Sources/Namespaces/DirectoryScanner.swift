#if canImport(Glibc)
import Glibc
#endif
import CLinuxUAPI

/// Reads directories with getdents64(2) into one reused buffer and hands out each entry's name as
/// bytes, without allocating: the /proc scanners call it for thousands of directories.
///
/// Records are `struct linux_dirent64` (d_ino u64, d_off s64, d_reclen u16, d_type u8, d_name[]).
struct DirectoryScanner: ~Copyable {
    private let buffer: UnsafeMutableRawPointer
    private let capacity: Int

    init(capacity: Int = 64 * 1024) {
        self.capacity = capacity
        self.buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
    }

    deinit { buffer.deallocate() }

    /// Calls `body` with each entry's NUL-terminated name (never "." or "..") and its length.
    /// Returns 0, or the errno of a failed getdents64 (entries seen before it were delivered).
    @discardableResult
    func forEach(inDirectory fd: Int32, _ body: (UnsafePointer<CChar>, Int) -> Void) -> Int32 {
        while true {
            let n = sockctl_getdents64(fd, buffer, capacity)
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            if n == 0 { return 0 }
            var offset = 0
            while offset < n {
                let record = buffer + offset
                let reclen = Int(record.load(fromByteOffset: 16, as: UInt16.self))
                let name = (record + 19).assumingMemoryBound(to: CChar.self)
                let len = strlen(name)
                if !(name[0] == 0x2E && (len == 1 || (len == 2 && name[1] == 0x2E))) {
                    body(UnsafePointer(name), len)
                }
                offset += reclen
            }
        }
    }
}

/// Parses a decimal name ("1234") without allocating; nil when it holds anything but digits.
@inline(__always)
func parseDecimal(_ name: UnsafePointer<CChar>, _ len: Int) -> Int64? {
    if len == 0 || len > 18 { return nil }
    var value: Int64 = 0
    for i in 0..<len {
        let c = UInt8(bitPattern: name[i])
        guard c >= 0x30 && c <= 0x39 else { return nil }
        value = value * 10 + Int64(c - 0x30)
    }
    return value
}
