import Foundation
import TestSupport
@testable import SavedSYN
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Runs a program, returns (status, stdout, stderr).
@discardableResult
func run(_ args: [String], input: String? = nil) throws -> (Int32, String, String) { let r = runCommand(args, input: input); return (r.status, r.stdout, r.stderr) }

func sh(_ args: String...) throws { try runChecked(args) }

typealias TestFailure = TestError

/// A unique name `sockctl-t-syn-<pid>-<n>-<tag>`.
func uniqueName(_ tag: String) -> String { "sockctl-t-syn-\(getpid())-\(TestNamespace.nextNumber())-\(tag)" }

/// A network namespace the test creates (sockctl-t-syn-PID-N-TAG); `delete()` removes it (call it
/// in `defer`).
final class TestNetns: TestNamespace, @unchecked Sendable {
    init(_ tag: String) throws { try super.init(name: uniqueName(tag)) }

    func delete() { remove() }

    func exec(_ args: String...) throws {
        let r = super.exec(args)
        if r.status != 0 { throw TestFailure("ip netns exec \(name) \(args.joined(separator: " ")) failed (\(r.status)): \(r.stderr)") }
    }
}

/// Two namespaces joined by a veth pair with fixed MACs and addresses: client `10.77.0.1`/`fd77::1`,
/// server `10.77.0.2`/`fd77::2`; the server knows the client's MAC (static neighbour entries).
final class VethPair {
    let client: TestNetns
    let server: TestNetns
    let clientIf: String
    let serverIf: String
    static let clientMAC = "02:00:00:00:00:01", serverMAC = "02:00:00:00:00:02"

    init() throws {
        client = try TestNetns("c")
        server = try TestNetns("s")
        let n = uniqueName("x").split(separator: "-").dropLast().last.map(String.init) ?? "0"
        clientIf = "sy\(getpid() % 100000)c\(n)"
        serverIf = "sy\(getpid() % 100000)s\(n)"
        do {
            try sh("ip", "link", "add", clientIf, "netns", client.name, "address", Self.clientMAC, "type", "veth",
                   "peer", "name", serverIf, "netns", server.name, "address", Self.serverMAC)
            try sh("ip", "-n", client.name, "addr", "add", "10.77.0.1/24", "dev", clientIf)
            try sh("ip", "-n", server.name, "addr", "add", "10.77.0.2/24", "dev", serverIf)
            try sh("ip", "-n", client.name, "addr", "add", "fd77::1/64", "dev", clientIf, "nodad")
            try sh("ip", "-n", server.name, "addr", "add", "fd77::2/64", "dev", serverIf, "nodad")
            try sh("ip", "-n", client.name, "link", "set", clientIf, "up")
            try sh("ip", "-n", server.name, "link", "set", serverIf, "up")
            try sh("ip", "-n", server.name, "neigh", "add", "10.77.0.1", "lladdr", Self.clientMAC, "dev", serverIf)
            try sh("ip", "-n", server.name, "neigh", "add", "fd77::1", "lladdr", Self.clientMAC, "dev", serverIf)
            try sh("ip", "-n", client.name, "neigh", "add", "10.77.0.2", "lladdr", Self.serverMAC, "dev", clientIf)
            try sh("ip", "-n", client.name, "neigh", "add", "fd77::2", "lladdr", Self.serverMAC, "dev", clientIf)
        } catch {
            delete()
            throw error
        }
    }

    /// The client namespace's kernel must not reset the handshakes scapy makes.
    func dropClientRSTs() throws {
        try client.exec("nft", "add", "table", "inet", "sockctl")
        try client.exec("nft", "add", "chain", "inet", "sockctl", "out", "{ type filter hook output priority 0; }")
        try client.exec("nft", "add", "rule", "inet", "sockctl", "out", "tcp", "flags", "rst", "drop")
    }

    func delete() {
        client.delete()
        server.delete()
    }
}

/// A TCP listener (opened inside the namespace by the caller's thread).
func makeListener(family: Int32, address: String, port: UInt16 = 0, saveSYN: SYNCapture.Mode? = .headers) throws -> (Int32, UInt16) {
    let fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: \(errno)") }
    if family == AF_INET6 {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, 4)
    }
    if let m = saveSYN { try SYNCapture.enable(listener: fd, mode: m) }
    let rc = withSocketAddress(family: family, address: address, port: port) { bind(fd, $0, $1) }
    guard rc == 0, listen(fd, 128) == 0 else { throw TestFailure("bind/listen \(address): \(String(cString: strerror(errno)))") }
    return (fd, localPort(fd))
}

/// Calls `body` with a numeric IPv4 or IPv6 socket address, as bind(2) and connect(2) take it.
func withSocketAddress(family: Int32, address: String, port: UInt16,
                       _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
    if family == AF_INET {
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = port.bigEndian
        inet_pton(AF_INET, address, &sa.sin_addr)
        return withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    }
    var sa = sockaddr_in6()
    sa.sin6_family = sa_family_t(AF_INET6)
    sa.sin6_port = port.bigEndian
    inet_pton(AF_INET6, address, &sa.sin6_addr)
    return withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
}

func localPort(_ fd: Int32) -> UInt16 {
    var ss = sockaddr_storage()
    var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
    _ = withUnsafeMutablePointer(to: &ss) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    let family = Int32(ss.ss_family)
    return withUnsafePointer(to: &ss) { p in
        family == AF_INET
            ? p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
            : p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
    }
}

/// connect(2) from the calling thread (which must be in the right namespace); returns the fd.
func connectTo(family: Int32, address: String, port: UInt16, mss: Int32? = nil) throws -> Int32 {
    let fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
    if let m = mss {
        var v = m
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_MAXSEG, &v, 4)
    }
    let rc = withSocketAddress(family: family, address: address, port: port) { connect(fd, $0, $1) }
    guard rc == 0 else { let e = errno; close(fd); throw TestFailure("connect \(address):\(port): \(String(cString: strerror(e)))") }
    return fd
}

/// accept(2) with a timeout.
func acceptWithin(_ fd: Int32, seconds: Int32 = 5) throws -> Int32 {
    var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    guard poll(&p, 1, seconds * 1000) == 1 else { throw TestFailure("no connection within \(seconds)s") }
    let c = accept(fd, nil, nil)
    guard c >= 0 else { throw TestFailure("accept: \(errno)") }
    return c
}

/// A pcap file (linktype 101, raw IP) holding the given packets, for p0f -r.
func writeRawIPPcap(_ packets: [[UInt8]], to path: String) throws {
    var d: [UInt8] = []
    func le32(_ v: UInt32) { d += [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)] }
    func le16(_ v: UInt16) { d += [UInt8(v & 0xff), UInt8(v >> 8)] }
    le32(0xa1b2c3d4); le16(2); le16(4); le32(0); le32(0); le32(65535); le32(101)
    for (i, p) in packets.enumerated() {
        le32(1_700_000_000 + UInt32(i)); le32(0); le32(UInt32(p.count)); le32(UInt32(p.count))
        d += p
    }
    guard FileManager.default.createFile(atPath: path, contents: Data(d)) else { throw TestFailure("cannot write \(path)") }
}

/// What p0f printed for one SYN.
struct P0fObservation {
    var rawSig: String
    /// `os=` or `app=` value ("???" when unknown).
    var label: String
    var isApp: Bool
    var dist: String
    var params: String
}

/// Runs `p0f -r pcap -o log` with the given database and returns its SYN observations by client port.
func runP0f(pcap: String, db: String = "/etc/p0f/p0f.fp") throws -> [Int: P0fObservation] {
    let log = pcap + ".log"
    let (st, _, err) = try run(["/usr/sbin/p0f", "-r", pcap, "-f", db, "-o", log])
    guard st == 0 else { throw TestFailure("p0f failed (\(st)): \(err)") }
    let text = try String(contentsOfFile: log, encoding: .utf8)
    var out: [Int: P0fObservation] = [:]
    for line in text.split(separator: "\n") where line.contains("|subj=cli|") && line.contains("mod=syn|") {
        var fields: [String: String] = [:]
        for part in line.split(separator: "|") {
            if let eq = part.firstIndex(of: "=") {
                let k = String(part[..<eq]).split(separator: " ").last.map(String.init) ?? ""
                fields[k] = String(part[part.index(after: eq)...])
            }
        }
        guard let cli = fields["cli"], let port = cli.split(separator: "/").last.flatMap({ Int($0) }) else { continue }
        out[port] = P0fObservation(rawSig: fields["raw_sig"] ?? "", label: fields["os"] ?? fields["app"] ?? "",
                                   isApp: fields["app"] != nil, dist: fields["dist"] ?? "", params: fields["params"] ?? "")
    }
    return out
}

/// Our answer in p0f's terms: the label or "???".
func ourLabel(_ fp: SYNFingerprint) -> String { fp.os ?? "???" }

let testsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path

/// The built `sockctl` binary (next to the test bundle).
func sockctlBinary() -> String {
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let c = dir.appendingPathComponent("sockctl").path
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: c, isDirectory: &isDir), !isDir.boolValue { return c }
        dir = dir.deletingLastPathComponent()
    }
    return URL(fileURLWithPath: testsDirectory).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/debug/sockctl").path
}
