#if canImport(Glibc)
import Glibc
#endif
import Foundation
import CLinuxUAPI

/// How the supervisor decides that a new generation is ready (`--ready`).
///
///     notify                 READY=1 on NOTIFY_SOCKET from the child (or MAINPID= naming it)
///     tcp                    a TCP connect to the first tcp listener succeeds
///     tcp://ADDR:PORT        a TCP connect to ADDR:PORT succeeds
///     http://ADDR:PORT/PATH  GET answers 2xx
///     delay:2s               the child is still alive after the delay
///
/// tcp and http checks against a listener the generations *share* reach whichever generation
/// accepts (or just the kernel backlog): they prove little; point them at a per-generation health
/// port, or use notify.
public enum Readiness: Equatable, CustomStringConvertible {
    case notify
    case tcp(host: String?, port: UInt16?)
    case http(host: String, port: UInt16, path: String)
    case delay(Double)

    public static func parse(_ text: String) throws -> Readiness {
        func bad(_ why: String) -> HandoffError {
            .config("--ready '\(text)': \(why) (expected notify, tcp, tcp://ADDR:PORT, http://ADDR:PORT/PATH or delay:DURATION)")
        }
        if text == "notify" { return .notify }
        if text == "tcp" { return .tcp(host: nil, port: nil) }
        if text.hasPrefix("delay:") { return .delay(try DurationParser.parse(String(text.dropFirst(6)), option: "--ready delay")) }
        if text.hasPrefix("tcp://") {
            let spec = try ListenerSpec.parse(text)
            return .tcp(host: spec.address, port: spec.port)
        }
        if text.hasPrefix("http://") {
            var rest = text.dropFirst(7)
            var path = "/"
            if let slash = rest.firstIndex(of: "/") {
                path = String(rest[slash...])
                rest = rest[..<slash]
            }
            guard let spec = try? ListenerSpec.parse("tcp://" + rest) else { throw bad("http check needs a numeric ADDR:PORT") }
            return .http(host: spec.address, port: spec.port, path: path)
        }
        throw bad("unknown readiness check")
    }

    public var description: String {
        switch self {
        case .notify: return "notify"
        case let .tcp(h, p): return h.map { "tcp://\($0):\(p ?? 0)" } ?? "tcp"
        case let .http(h, p, path): return "http://\(h):\(p)\(path)"
        case let .delay(d): return "delay:\(DurationParser.format(d))"
        }
    }

    /// One attempt of a tcp or http check (blocking, short timeouts). Used from a helper thread.
    static func probe(host: String, port: UInt16, httpPath: String?) -> Bool {
        let h = host == "0.0.0.0" ? "127.0.0.1" : (host == "::" ? "::1" : host)
        let fd = socket(h.contains(":") ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var tv = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let ok = (try? InetAddress(h, port: port).withSockaddr { connect(fd, $0, $1) == 0 }) ?? false
        guard ok else { return false }
        guard let httpPath else { return true }
        let req = Array("GET \(httpPath) HTTP/1.1\r\nHost: \(h)\r\nConnection: close\r\n\r\n".utf8)
        guard send(fd, req, req.count, Int32(MSG_NOSIGNAL)) == req.count else { return false }
        var buf = [UInt8](repeating: 0, count: 64)
        let n = recv(fd, &buf, buf.count, 0)
        guard n >= 12 else { return false }
        let head = String(decoding: buf[0..<n], as: UTF8.self)
        return head.hasPrefix("HTTP/1.") && head.dropFirst(9).hasPrefix("2")
    }
}
