import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A socket address for `sockctl syn`: parsed from `ADDR:PORT`, `[IPV6]:PORT` or `:PORT`.
struct SynSocketAddress {
    var storage = sockaddr_storage()
    var length: socklen_t = 0
    var family: Int32 { Int32(storage.ss_family) }

    /// getaddrinfo(3) with numeric ports; `passive` turns an empty host into the any-address (IPv6,
    /// dual-stack).
    static func parse(_ text: String, passive: Bool) -> SynSocketAddress? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        let port = String(text[text.index(after: colon)...])
        guard let p = Int(port), (1...65535).contains(p) else { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        else if host.contains(":") { return nil }
        if host.isEmpty || host == "*" {
            guard passive else { return nil }
            host = "::"
        }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)
        var res: UnsafeMutablePointer<addrinfo>? = nil
        guard getaddrinfo(host, port, &hints, &res) == 0, let r = res else { return nil }
        defer { freeaddrinfo(res) }
        var a = SynSocketAddress()
        withUnsafeMutableBytes(of: &a.storage) { dst in
            dst.copyMemory(from: UnsafeRawBufferPointer(start: r.pointee.ai_addr, count: Int(r.pointee.ai_addrlen)))
        }
        a.length = r.pointee.ai_addrlen
        return a
    }

    func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        withUnsafePointer(to: storage) { p in p.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) } }
    }

    /// Address text and port of a socket's local or peer end.
    static func name(fd: Int32, peer: Bool) -> (String, Int) {
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &ss) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { peer ? getpeername(fd, $0, &len) : getsockname(fd, $0, &len) }
        }
        guard rc == 0 else { return ("", 0) }
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var serv = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let g = withUnsafePointer(to: &ss) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, len, &host, socklen_t(host.count), &serv, socklen_t(serv.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard g == 0 else { return ("", 0) }
        var h = String(cString: host)
        if h.hasPrefix("::ffff:") && h.contains(".") { h = String(h.dropFirst(7)) }
        return (h, Int(String(cString: serv)) ?? 0)
    }
}

/// Byte pump between an accepted client and a fresh connection to the upstream server.
enum SynProxy {
    static func run(client: Int32, upstream: SynSocketAddress) {
        let up = socket(upstream.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard up >= 0 else { close(client); return }
        if upstream.withSockaddr({ connect(up, $0, $1) }) != 0 {
            let e = errno
            FileHandle.standardError.write("sockctl syn: connect(upstream): \(String(cString: strerror(e)))\n".data(using: .utf8)!)
            close(up)
            close(client)
            return
        }
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            pump(from: client, to: up)
            done.signal()
        }
        pump(from: up, to: client)
        done.wait()
        close(up)
        close(client)
    }

    /// Copies until EOF or error, then half-closes the writer's side so the other direction can finish.
    static func pump(from src: Int32, to dst: Int32) {
        var buf = [UInt8](repeating: 0, count: 65536)
        outer: while true {
            let n = buf.withUnsafeMutableBytes { read(src, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            var off = 0
            while off < n {
                let w = buf.withUnsafeBytes { send(dst, $0.baseAddress! + off, n - off, Int32(MSG_NOSIGNAL)) }
                if w < 0 && errno == EINTR { continue }
                if w <= 0 { break outer }
                off += w
            }
        }
        shutdown(dst, Int32(SHUT_WR))
    }
}
