import Foundation
import TestSupport
import CLinuxUAPI
import SockDiag
@testable import SocketFilter
#if canImport(Glibc)
import Glibc
#endif

/// Runs a command, returns (exit status, stdout). stderr is discarded.
@discardableResult
func run(_ args: [String], stdin: FileHandle? = nil) -> (Int32, String) { let r = runCommand(args, stdin: stdin); return (r.status, r.stdout) }

extension Holder {
    /// Lets the fixture end by itself (stdin closed) and waits for it.
    func stop() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}

typealias HarnessError = TestError

/// Two namespaces joined by veth vA <-> vB, created for one test and deleted by `teardown`, plus a
/// cgroup v2 directory (when a cgroup2 mount exists) for the fixture's child process.
struct NamespacePair {
    let a: String, b: String, tmp: String
    let cgroup: String?
    init(tag: String) throws {
        a = "sockctl-t-filter-\(tag)-a"; b = "sockctl-t-filter-\(tag)-b"; tmp = "/tmp/sockctl-t-filter-\(tag)"
        if let m = FilterContext.cgroup2Mount(), mkdir(m + "/sockctl-t-filter-\(tag)", 0o755) == 0 {
            cgroup = m + "/sockctl-t-filter-\(tag)"
        } else {
            cgroup = nil
        }
        let cmds: [[String]] = [
            ["ip", "netns", "add", a], ["ip", "netns", "add", b],
            ["ip", "link", "add", "vA", "netns", a, "type", "veth", "peer", "name", "vB", "netns", b],
            ["ip", "-n", a, "link", "set", "lo", "up"], ["ip", "-n", b, "link", "set", "lo", "up"],
            ["ip", "-n", a, "link", "set", "vA", "up"], ["ip", "-n", b, "link", "set", "vB", "up"],
            ["ip", "-n", a, "addr", "add", "10.20.0.1/24", "dev", "vA"],
            ["ip", "-n", b, "addr", "add", "10.20.0.2/24", "dev", "vB"],
            ["ip", "-n", a, "addr", "add", "fd20::1/64", "dev", "vA", "nodad"],
            ["ip", "-n", b, "addr", "add", "fd20::2/64", "dev", "vB", "nodad"],
            ["ip", "-n", a, "route", "add", "10.99.0.0/16", "via", "10.20.0.2"],
            ["mkdir", "-p", tmp],
        ]
        for c in cmds where run(c).0 != 0 {
            teardown()
            throw HarnessError("setup failed: \(c.joined(separator: " "))")
        }
    }
    func teardown() {
        run(["ip", "netns", "del", a]); run(["ip", "netns", "del", b]); run(["rm", "-rf", tmp])
        if let cg = cgroup {
            for _ in 0..<50 where rmdir(cg) != 0 { usleep(20_000) }  // the child may still be exiting
        }
    }
}

/// Work done on a dedicated pthread that enters a network namespace; the thread exits afterwards
/// (never reused), and sockets it opened stay in that namespace.
/// `body` run on a thread inside the namespace `name`, nil when the thread could not join it.
func inNamespace<T>(_ name: String, _ body: @escaping () -> T) -> T? { try? onThread(inNetns: "/run/netns/\(name)", body) }

/// A minimal SOCK_DIAG_BY_FAMILY dumper over a raw NETLINK_SOCK_DIAG socket (the Netlink module
/// belongs to the lead; this only needs requests with bytecode and the fixed reply headers).
struct DiagSocket {
    let fd: Int32

    static func open(in ns: String) throws -> DiagSocket {
        guard let fd = inNamespace(ns, { socket(AF_NETLINK, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), NETLINK_SOCK_DIAG) }),
              fd >= 0 else { throw HarnessError("socket(AF_NETLINK) in \(ns) failed") }
        return DiagSocket(fd: fd)
    }

    /// Sends one dump request; returns each reply payload, or the kernel's errno.
    func dump(_ payload: [UInt8]) throws -> [[UInt8]] {
        var msg: [UInt8] = []
        let len = 16 + payload.count
        msg += LE.u32(UInt32(len)) + LE.u16(20 /* SOCK_DIAG_BY_FAMILY */) + LE.u16(UInt16(NLM_F_REQUEST | NLM_F_DUMP))
        msg += LE.u32(1) + LE.u32(0) + payload
        var addr = sockaddr_nl(); addr.nl_family = sa_family_t(AF_NETLINK)
        let sent = msg.withUnsafeBytes { b in
            withUnsafePointer(to: &addr) { a in
                a.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
                }
            }
        }
        guard sent == msg.count else { throw HarnessError("sendto: errno \(errno)") }
        var replies: [[UInt8]] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            guard n > 0 else { throw HarnessError("recv: errno \(errno)") }
            var off = 0
            while off + 16 <= n {
                let mlen = Int(LE.readU32(buf, off)), type = LE.readU16(buf, off + 4)
                if type == UInt16(NLMSG_DONE) { return replies }
                if type == UInt16(NLMSG_ERROR) {
                    let err = Int32(bitPattern: LE.readU32(buf, off + 16))
                    throw DumpError(errno: -err)
                }
                replies.append(Array(buf[(off + 16)..<(off + mlen)]))
                off += (mlen + 3) & ~3
            }
        }
    }

    struct DumpError: Error { var errno: Int32 }

    /// `inet_diag_req_v2` + optional `INET_DIAG_REQ_BYTECODE`.
    func inet(family: UInt8, proto: UInt8, states: UInt32, bytecode: [UInt8]) throws -> [Socket] {
        var req: [UInt8] = [family, proto, 0, 0] + LE.u32(states) + [UInt8](repeating: 0, count: 48)
        if !bytecode.isEmpty {
            req += LE.u16(UInt16(4 + bytecode.count)) + LE.u16(1 /* INET_DIAG_REQ_BYTECODE */) + bytecode
            while req.count % 4 != 0 { req.append(0) }
        }
        return try dump(req).map { m in
            var s = Socket(family: m[0], kind: proto == 6 ? .tcp : .udp, state: SocketState(rawValue: m[1]))
            s.sourcePort = UInt16(m[4]) << 8 | UInt16(m[5])
            s.destinationPort = UInt16(m[6]) << 8 | UInt16(m[7])
            let alen = m[0] == 10 ? 16 : 4
            s.source = InetAddress(networkBytes: m[8..<(8 + alen)])
            s.destination = InetAddress(networkBytes: m[24..<(24 + alen)])
            s.interfaceIndex = LE.readU32(m, 40)
            s.cookie = UInt64(LE.readU32(m, 44)) | UInt64(LE.readU32(m, 48)) << 32
            s.uid = LE.readU32(m, 64)
            s.inode = LE.readU32(m, 68)
            var off = 72
            while off + 4 <= m.count {
                let alen = Int(LE.readU16(m, off)), type = LE.readU16(m, off + 2)
                if alen < 4 { break }
                if type == 15 /* INET_DIAG_MARK */ { s.mark = LE.readU32(m, off + 4) }
                if type == 21 /* INET_DIAG_CGROUP_ID */, alen >= 12 { s.cgroupID = LE.readU64(m, off + 4) }
                off += (alen + 3) & ~3
            }
            return s
        }
    }

    /// `unix_diag_req` with UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_UID.
    func unix(states: UInt32) throws -> [Socket] {
        let req: [UInt8] = [1, 0, 0, 0] + LE.u32(states) + LE.u32(0) + LE.u32(1 | 4 | 0x40) + LE.u32(0xFFFF_FFFF) + LE.u32(0xFFFF_FFFF)
        return try dump(req).map { m in
            let kind: SocketKind = m[1] == 1 ? .stream : m[1] == 2 ? .dgram : .seqpacket
            var s = Socket(family: 1, kind: kind, state: SocketState(rawValue: m[2]))
            s.inode = LE.readU32(m, 4)
            s.cookie = UInt64(LE.readU32(m, 8)) | UInt64(LE.readU32(m, 12)) << 32
            var off = 16
            while off + 4 <= m.count {
                let alen = Int(LE.readU16(m, off)), type = LE.readU16(m, off + 2)
                if alen < 4 { break }
                if type == 0 /* UNIX_DIAG_NAME */ {
                    var name = Array(m[(off + 4)..<(off + alen)])
                    if name.first == 0 { name = name.map { $0 == 0 ? UInt8(ascii: "@") : $0 } }
                    s.path = String(decoding: name, as: UTF8.self)
                }
                if type == 2 /* UNIX_DIAG_PEER */ { s.peerInode = LE.readU32(m, off + 4) }
                if type == 7 /* UNIX_DIAG_UID */ { s.uid = LE.readU32(m, off + 4) }
                off += (alen + 3) & ~3
            }
            return s
        }
    }
}

/// socket inode -> holders, from /proc/*/fd (as ss -p finds them).
func processTable() -> [UInt32: [SocketProcess]] {
    var table: [UInt32: [SocketProcess]] = [:]
    let fm = FileManager.default
    for pidName in (try? fm.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = Int32(pidName) else { continue }
        let comm = ((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "")
            .trimmingCharacters(in: .newlines)
        for fdName in (try? fm.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? [] {
            guard let fd = Int32(fdName),
                  let target = try? fm.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fdName)"),
                  target.hasPrefix("socket:["), let ino = UInt32(target.dropFirst(8).dropLast()) else { continue }
            table[ino, default: []].append(SocketProcess(pid: pid, comm: comm, fd: fd))
        }
    }
    return table
}

/// socket inode -> owner uid, from fstat of a holder's /proc/PID/fd/N: the sockfs inode's i_uid,
/// which is what sock_diag reports as the socket's uid (ss -x -e prints no uid for unix sockets).
func socketOwners(_ table: [UInt32: [SocketProcess]]) -> [UInt32: UInt32] {
    var owners: [UInt32: UInt32] = [:]
    for (ino, holders) in table {
        for h in holders {
            var st = stat()
            if stat("/proc/\(h.pid)/fd/\(h.fd)", &st) == 0 { owners[ino] = st.st_uid; break }
        }
    }
    return owners
}

/// The inode in a unix row's key (`u_str|STATE|INODE`).
func unixInode(_ key: String) -> UInt32? {
    key.split(separator: "|").last.flatMap { UInt32($0) }
}

/// One row of `ss -H -n -a -e -p` output, reduced to what the comparison needs.
struct SSRow {
    var key: String
    var uid: UInt32 = 0
    var cookie: UInt64 = 0
    var users: [(comm: String, pid: Int32)] = []
}

func canonicalEndpoint(_ s: Substring) -> String {
    guard let colon = s.lastIndex(of: ":") else { return String(s) }
    var addr = s[..<colon]
    var port = s[s.index(after: colon)...]
    if let pct = addr.firstIndex(of: "%") { addr = addr[..<pct] }
    if addr.hasPrefix("["), addr.hasSuffix("]") { addr = addr.dropFirst().dropLast() }
    if addr == "*" { addr = "::" }
    if port == "*" { port = "0" }
    return "\(InetAddress(String(addr))?.description ?? String(addr)):\(port)"
}

/// `singleState`: ss drops its State column when exactly one state is selected.
func ssRows(ns: String, args: [String], expr: String, singleState: String? = nil) -> (Int32, [SSRow]) {
    // nsenter, not ss -N: -N remounts /sys, which hides the cgroup2 mount that `cgroup PATH` needs
    var argv = ["nsenter", "--net=/run/netns/\(ns)", "ss", "-H", "-n", "-a", "-e", "-p"] + args
    if !expr.isEmpty { argv += expr.split(separator: " ").map(String.init) }
    let (status, out) = run(argv)
    var rows: [SSRow] = []
    for line in out.split(separator: "\n") {
        var f = line.split(separator: " ", omittingEmptySubsequences: true)
        if f.count > 2, f[1].allSatisfy(\.isNumber) { f.insert(Substring(singleState ?? "?"), at: 1) }
        guard f.count >= 6 else { continue }
        var row: SSRow
        if f[0].hasPrefix("u_") {
            row = SSRow(key: "\(f[0])|\(f[1])|\(f[5])")
        } else {
            row = SSRow(key: "\(f[0])|\(f[1])|\(canonicalEndpoint(f[4]))|\(canonicalEndpoint(f[5]))")
        }
        for x in f.dropFirst(6) {
            if x.hasPrefix("uid:") { row.uid = UInt32(x.dropFirst(4)) ?? 0 }
            if x.hasPrefix("sk:") { row.cookie = UInt64(x.dropFirst(3), radix: 16) ?? 0 }
        }
        if let r = line.range(of: "users:(") {
            var rest = line[r.upperBound...]
            while let q = rest.range(of: "((\"") ?? rest.range(of: "(\"") {
                rest = rest[q.upperBound...]
                guard let endq = rest.firstIndex(of: "\"") else { break }
                let comm = String(rest[..<endq])
                var pid: Int32 = 0
                if let pr = rest.range(of: "pid=") {
                    pid = Int32(rest[pr.upperBound...].prefix { $0.isNumber }) ?? 0
                }
                row.users.append((comm, pid))
                rest = rest[endq...]
            }
        }
        rows.append(row)
    }
    return (status, rows)
}

func key(of s: Socket) -> String {
    if s.isUnix {
        let netid = s.kind == .stream ? "u_str" : s.kind == .dgram ? "u_dgr" : "u_seq"
        return "\(netid)|\(s.state.shortName)|\(s.inode)"
    }
    let src = s.source?.description ?? "?", dst = s.destination?.description ?? "?"
    return "\(s.kind.rawValue)|\(s.state.shortName)|\(src):\(s.sourcePort)|\(dst):\(s.destinationPort)"
}
