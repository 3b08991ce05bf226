#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `TCP_SAVE_SYN` (27, linux/tcp.h) and `TCP_SAVED_SYN` (28) on raw file descriptors.
///
/// SwiftNIO's generic socket-option getter reads into a fixed buffer and drops the returned length,
/// so the saved SYN is read here with getsockopt(2) on the fd itself.
public enum SYNCapture {
    /// `TCP_SAVE_SYN` values.
    public enum Mode: Int32, Sendable {
        /// Save the network and TCP headers.
        case headers = 1
        /// Save the MAC header too (`SYNParser.LinkLayer.ethernet`).
        case withMACHeader = 2
    }

    /// What a read of `TCP_SAVED_SYN` gave.
    public enum Result: Equatable, Sendable {
        /// The saved headers; the kernel has now freed its copy.
        case syn([UInt8])
        /// The kernel returned length 0: already read, the listener had no `TCP_SAVE_SYN`, the
        /// connection was accepted from a SYN cookie (no SYN is kept then), or no SYN at all.
        case noSYN
    }

    /// A failing socket call, with the syscall, errno and what to do about it.
    public struct Error: Swift.Error, Equatable, Sendable, CustomStringConvertible {
        public let call: String
        public let errno: Int32
        public let advice: String
        public var description: String {
            "\(call): \(String(cString: strerror(errno))) (errno \(errno)). \(advice)"
        }
    }

    /// First buffer size tried: enough for IPv4/IPv6 + TCP with full options and a MAC header.
    public static let defaultBufferSize = 256

    /// Sets `TCP_SAVE_SYN` on a listening (or about to listen) TCP socket.
    public static func enable(listener fd: Int32, mode: Mode = .headers) throws(Error) {
        var v = mode.rawValue
        let rc = setsockopt(fd, Int32(IPPROTO_TCP), TCP_SAVE_SYN, &v, socklen_t(MemoryLayout<Int32>.size))
        if rc != 0 {
            let e = errno
            throw Error(call: "setsockopt(TCP_SAVE_SYN)", errno: e, advice: advice(e))
        }
    }

    /// Reads and consumes the saved SYN of an accepted socket. When the kernel says the buffer is too
    /// small (`EINVAL` with the needed length written back; the SYN is kept), it grows the buffer to
    /// that length and reads again.
    public static func read(accepted fd: Int32, initialBufferSize: Int = defaultBufferSize) throws(Error) -> Result {
        var size = max(1, initialBufferSize)
        for _ in 0..<4 {
            var buf = [UInt8](repeating: 0, count: size)
            var len = socklen_t(size)
            let rc = buf.withUnsafeMutableBytes { p in
                getsockopt(fd, Int32(IPPROTO_TCP), TCP_SAVED_SYN, p.baseAddress, &len)
            }
            if rc == 0 {
                if len == 0 { return .noSYN }
                buf.removeSubrange(Int(len)...)
                return .syn(buf)
            }
            let e = errno
            if e == EINVAL && Int(len) > size {
                size = Int(len)
                continue
            }
            throw Error(call: "getsockopt(TCP_SAVED_SYN)", errno: e, advice: advice(e))
        }
        throw Error(call: "getsockopt(TCP_SAVED_SYN)", errno: EINVAL,
                    advice: "the kernel kept asking for a larger buffer; giving up after 4 tries")
    }

    /// What `readHeaders` gave.
    public enum HeadersResult: Equatable, Sendable {
        /// The saved SYN, parsed; the kernel has now freed its copy.
        case headers(SYNHeaders)
        /// The kernel returned length 0 (see `Result.noSYN`).
        case noSYN
        /// The kernel's bytes did not parse (should not happen with a real SYN; says what and where).
        case malformed(SYNParseError)
    }

    /// Reads, consumes and parses the saved SYN of an accepted socket without a heap allocation: the
    /// bytes go to a 512-byte buffer on the stack (a saved SYN is at most 18 + 60 + 60 bytes unless
    /// IPv6 extension headers make it longer; then it falls back to `read`, which grows the buffer).
    public static func readHeaders(accepted fd: Int32, linkLayer: SYNParser.LinkLayer = .none) throws(Error) -> HeadersResult {
        let stackSize = 512
        let first: Swift.Result<HeadersResult, Error>? = withUnsafeTemporaryAllocation(byteCount: stackSize, alignment: 16) { buf in
            var len = socklen_t(stackSize)
            if getsockopt(fd, Int32(IPPROTO_TCP), TCP_SAVED_SYN, buf.baseAddress, &len) == 0 {
                if len == 0 { return .success(.noSYN) }
                do throws(SYNParseError) {
                    return .success(.headers(try SYNHeaders.parse(UnsafeRawBufferPointer(rebasing: buf[0..<Int(len)]), linkLayer: linkLayer)))
                } catch {
                    return .success(.malformed(error))
                }
            }
            let e = errno
            if e == EINVAL && Int(len) > stackSize { return nil }  // larger than the stack buffer
            return .failure(Error(call: "getsockopt(TCP_SAVED_SYN)", errno: e, advice: advice(e)))
        }
        if let first { return try first.get() }
        switch try read(accepted: fd, initialBufferSize: 4096) {
        case .noSYN: return .noSYN
        case let .syn(bytes):
            do throws(SYNParseError) {
                return .headers(try SYNHeaders.parse(bytes, linkLayer: linkLayer))
            } catch {
                return .malformed(error)
            }
        }
    }

    static func advice(_ e: Int32) -> String {
        switch e {
        case ENOPROTOOPT:
            return "The socket refuses TCP_SAVE_SYN/TCP_SAVED_SYN: MPTCP sockets do not support it; "
                + "use a plain TCP listener (IPPROTO_TCP) or a kernel with the option (Linux 4.2+)."
        case EBADF, ENOTSOCK:
            return "The descriptor is not an open socket."
        case EOPNOTSUPP:
            return "The socket is not a TCP socket."
        case EPERM, EACCES:
            return "Permission denied by a security module."
        default:
            return "Check that the descriptor is a TCP socket."
        }
    }
}
