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
/// accepts (or just the kernel backlog, for a bare TCP connect): they prove little during an
/// upgrade, when the old generation answers too. `{generation}` in ADDR or PATH is replaced by the
/// new generation's number (the child's SOCKCTL_GENERATION), so the check can reach only it: a
/// per-generation health address (`tcp://127.0.0.{generation}:9000`) or a path the server answers
/// with 2xx only for its own generation (`http://127.0.0.1:8080/ready?generation={generation}`).
public enum Readiness: Equatable, CustomStringConvertible {
    case notify
    /// `host` may contain `{generation}`; nil host and port: the first tcp listener.
    case tcp(host: String?, port: UInt16?)
    /// `host` and `path` may contain `{generation}`.
    case http(host: String, port: UInt16, path: String)
    case delay(Double)

    public static let generationPlaceholder = "{generation}"

    public static func parse(_ text: String) throws -> Readiness {
        func bad(_ why: String) -> HandoffError {
            .config("--ready '\(text)': \(why) (expected notify, tcp, tcp://ADDR:PORT, http://ADDR:PORT/PATH or delay:DURATION)")
        }
        if text == "notify" { return .notify }
        if text == "tcp" { return .tcp(host: nil, port: nil) }
        if text.hasPrefix("delay:") { return .delay(try DurationParser.parse(String(text.dropFirst(6)), option: "--ready delay")) }
        /// The ADDR:PORT part, validated with the placeholder set to 1; the host keeps the placeholder.
        func endpoint(_ authority: Substring) throws -> (String, UInt16) {
            let portText = authority.lastIndex(of: ":").map { authority[authority.index(after: $0)...] } ?? ""
            if portText.contains(generationPlaceholder) { throw bad("\(generationPlaceholder) may stand in ADDR or PATH, not in the port") }
            let spec: ListenerSpec
            do { spec = try ListenerSpec.parse("tcp://" + authority.replacingOccurrences(of: generationPlaceholder, with: "1")) } catch {
                throw bad("needs a numeric ADDR:PORT")
            }
            guard authority.contains(generationPlaceholder) else { return (spec.address, spec.port) }
            if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
                return (String(authority[authority.index(after: authority.startIndex)..<close]), spec.port)
            }
            return (String(authority[..<authority.lastIndex(of: ":")!]), spec.port)
        }
        if text.hasPrefix("tcp://") {
            let (host, port) = try endpoint(text.dropFirst(6))
            return .tcp(host: host, port: port)
        }
        if text.hasPrefix("http://") {
            var rest = text.dropFirst(7)
            var path = "/"
            if let slash = rest.firstIndex(of: "/") {
                path = String(rest[slash...])
                rest = rest[..<slash]
            }
            let (host, port) = try endpoint(rest)
            return .http(host: host, port: port, path: path)
        }
        throw bad("unknown readiness check")
    }

    public var description: String {
        switch self {
        case .notify: return "notify"
        case let .tcp(h, p): return h.map { "tcp://\($0.contains(":") ? "[\($0)]" : $0):\(p ?? 0)" } ?? "tcp"
        case let .http(h, p, path): return "http://\(h.contains(":") ? "[\(h)]" : h):\(p)\(path)"
        case let .delay(d): return "delay:\(DurationParser.format(d))"
        }
    }

    /// What a tcp or http check of `generation` connects to (nil for notify and delay, and for a
    /// bare `tcp` without `firstTCP`).
    public func target(generation: Int, firstTCP: (String, UInt16)?) -> (host: String, port: UInt16, httpPath: String?)? {
        func fill(_ s: String) -> String { s.replacingOccurrences(of: Readiness.generationPlaceholder, with: String(generation)) }
        switch self {
        case let .tcp(host?, port?): return (fill(host), port, nil)
        case .tcp: return firstTCP.map { ($0.0, $0.1, nil) }
        case let .http(host, port, path): return (fill(host), port, fill(path))
        default: return nil
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
