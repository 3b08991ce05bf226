import ArgumentParser
import SockCtlCLIBase
import Foundation
import SavedSYN

#if canImport(Glibc)
import Glibc
#endif

/// `sockctl syn`: accept TCP connections and say what each client's SYN tells (TCP_SAVED_SYN), or,
/// with `--proxy-to`, forward the clients the policy allows to a server that cannot be changed.
struct SynCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "syn",
        abstract: FullVerb.syn.abstract,
        discussion: """
        One line per accepted client. With --json one JSON object per line with the fields src, sport, \
        dst, dport, ttl, signature (p0f v3 raw signature), fingerprint (MuonFP) and os (when a \
        signature database matched). The built-in database (modern Linux, Windows 10/11, macOS, IPv6) \
        is always used; --db adds a p0f.fp file (e.g. /etc/p0f/p0f.fp) after it.
        Exit status: 0 done, 2 usage or config error, 3 permission or kernel support missing.
        """
    )

    @Option(name: .long, help: "Address to listen on: ADDR:PORT, [IPV6]:PORT or :PORT (all addresses).")
    var listen: String

    @Flag(name: .long, help: "One JSON object per client (NDJSON).")
    var json = false

    @Option(name: .long, help: "A p0f-format signature database (e.g. /etc/p0f/p0f.fp), matched after the built-in one.")
    var db: String?

    @Option(name: .long, help: "YAML policy (allow / deny / tag rules over os, fingerprint, ttl, mss, wscale, options, distance, quirks).")
    var policy: String?

    @Option(name: .customLong("proxy-to"), help: "Forward allowed clients to HOST:PORT; denied ones are closed at once.")
    var proxyTo: String?

    @Option(name: .long, help: "Exit after N clients (proxied connections are finished first).")
    var count: Int?

    func run() throws {
        let out = SynOutput(json: json)
        if let c = count, c < 1 { synFail(2, "--count must be at least 1, not \(c)") }
        guard let listenAddr = SynSocketAddress.parse(listen, passive: true) else {
            synFail(2, "--listen '\(listen)': expected ADDR:PORT, [IPV6]:PORT or :PORT with a port 1-65535")
        }
        var upstream: SynSocketAddress? = nil
        if let p = proxyTo {
            guard let a = SynSocketAddress.parse(p, passive: false) else {
                synFail(2, "--proxy-to '\(p)': expected HOST:PORT or [IPV6]:PORT")
            }
            upstream = a
        }
        var database = BuiltinSignatures.database
        if let path = db {
            do { database = database.merged(with: try P0fDatabase(contentsOf: path)) } catch { synFail(2, "\(error)") }
        }
        var rules: SYNPolicy? = nil
        if let path = policy {
            do { rules = try SYNPolicy(contentsOf: path) } catch { synFail(2, "\(error)") }
        }

        let lfd = openListener(listenAddr)
        defer { close(lfd) }
        var served = 0
        let group = DispatchGroup()
        while count.map({ served < $0 }) ?? true {
            let cfd = accept(lfd, nil, nil)
            if cfd < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                synFail(3, "accept: \(String(cString: strerror(errno))). The listening socket failed.")
            }
            served += 1
            let endpoints = SynEndpoints(fd: cfd)
            var fp: SYNFingerprint? = nil
            var problem: String? = nil
            do {
                switch try SYNCapture.read(accepted: cfd) {
                case let .syn(bytes):
                    do { fp = try SYNFingerprint(bytes: bytes, database: database) } catch { problem = "\(error)" }
                case .noSYN:
                    problem = "no saved SYN (SYN cookie, or the kernel kept none)"
                }
            } catch {
                problem = "\(error)"
            }
            let decision = fp.flatMap { rules?.evaluate($0) }
            out.client(endpoints: endpoints, fingerprint: fp, problem: problem, decision: decision)
            if let upstream, decision?.action != .deny {
                group.enter()
                Thread.detachNewThread {
                    SynProxy.run(client: cfd, upstream: upstream)
                    group.leave()
                }
            } else {
                close(cfd)
            }
        }
        group.wait()
    }

    func openListener(_ a: SynSocketAddress) -> Int32 {
        let fd = socket(Int32(a.family), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Int32(IPPROTO_TCP))
        if fd < 0 { synFail(3, "socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(4))
        if a.family == AF_INET6 {
            var zero: Int32 = 0
            _ = setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &zero, socklen_t(4))
        }
        do { try SYNCapture.enable(listener: fd) } catch { synFail(3, "\(error)") }
        let rc = a.withSockaddr { bind(fd, $0, $1) }
        if rc != 0 {
            let e = errno
            synFail(e == EACCES || e == EPERM ? 3 : 2,
                 "bind(\(listen)): \(String(cString: strerror(e))). "
                 + (e == EADDRINUSE ? "Another socket holds this port; choose another or stop it." :
                    e == EACCES ? "Ports below 1024 need CAP_NET_BIND_SERVICE (run as root)." :
                    "Check that the address is configured on this host."))
        }
        if Glibc.listen(fd, 1024) != 0 { synFail(3, "listen: \(String(cString: strerror(errno)))") }
        return fd
    }
}

/// Prints to stderr and exits with a DESIGN.md status.
func synFail(_ status: Int32, _ message: String) -> Never {
    FileHandle.standardError.write(("sockctl syn: " + message + "\n").data(using: .utf8)!)
    exit(status)
}

/// The two ends of an accepted connection, from the socket (used when no SYN was saved).
struct SynEndpoints {
    var src = "", dst = ""
    var sport = 0, dport = 0

    init(fd: Int32) {
        (src, sport) = SynSocketAddress.name(fd: fd, peer: true)
        (dst, dport) = SynSocketAddress.name(fd: fd, peer: false)
    }
}

/// Line or JSON output, serialised across proxy threads.
final class SynOutput: @unchecked Sendable {
    let json: Bool
    let lock = NSLock()
    init(json: Bool) { self.json = json }

    func client(endpoints e: SynEndpoints, fingerprint fp: SYNFingerprint?, problem: String?, decision: SYNPolicy.Decision?) {
        // The SYN's own addresses are what the client sent (no IPv4-mapped forms on dual-stack sockets).
        let src = fp?.packet.ip.sourceString ?? e.src
        let dst = fp?.packet.ip.destinationString ?? e.dst
        let sport = fp.map { Int($0.packet.tcp.sourcePort) } ?? e.sport
        let dport = fp.map { Int($0.packet.tcp.destinationPort) } ?? e.dport
        var line: String
        if json {
            var fields: [(String, String)] = [
                ("src", synJSONString(src)), ("sport", String(sport)), ("dst", synJSONString(dst)), ("dport", String(dport)),
                ("ttl", fp.map { String($0.packet.ip.ttl) } ?? "null"),
                ("signature", fp.map { synJSONString($0.signature) } ?? "null"),
                ("fingerprint", fp.map { synJSONString($0.fingerprint) } ?? "null"),
            ]
            if let os = fp?.os { fields.append(("os", synJSONString(os))) }
            line = "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
        } else {
            let from = src.contains(":") ? "[\(src)]:\(sport)" : "\(src):\(sport)"
            let to = dst.contains(":") ? "[\(dst)]:\(dport)" : "\(dst):\(dport)"
            line = "\(from) -> \(to)"
            if let fp {
                line += " ttl=\(fp.packet.ip.ttl) os=\"\(fp.os ?? "unknown")\" sig=\(fp.signature) fp=\(fp.fingerprint)"
            }
            if let d = decision {
                line += " policy=\(d.action.rawValue)" + (d.rule.map { "(\($0))" } ?? "")
                if !d.tags.isEmpty { line += " tags=\(d.tags.joined(separator: ","))" }
            }
            if let problem { line += " note=\"\(problem)\"" }
        }
        lock.lock()
        print(line)
        fflush(stdout)
        if json, let problem {
            FileHandle.standardError.write("sockctl syn: \(src):\(sport): \(problem)\n".data(using: .utf8)!)
        }
        if json, let d = decision, d.action == .deny {
            FileHandle.standardError.write("sockctl syn: \(src):\(sport): denied by \(d.rule ?? "default")\n".data(using: .utf8)!)
        }
        lock.unlock()
    }
}

func synJSONString(_ s: String) -> String {
    var o = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": o += "\\\""
        case "\\": o += "\\\\"
        case "\n": o += "\\n"
        case "\r": o += "\\r"
        case "\t": o += "\\t"
        default:
            if u.value < 0x20 { o += String(format: "\\u%04x", u.value) } else { o.unicodeScalars.append(u) }
        }
    }
    return o + "\""
}
