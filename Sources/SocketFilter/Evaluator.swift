#if canImport(Glibc)
import Glibc
#endif
import CLinuxUAPI
import SockDiag

/// Evaluates the AST on a `Socket` in userspace, following the kernel's `inet_diag_bc_run` rules for
/// inet sockets (v4-mapped handling, prefix matching) and ss's `run_ssfilter` rules for unix sockets.
struct Evaluator {
    /// Ports the kernel hands out for autobind; `autobound` on a dumped socket is approximated by
    /// "local port in this range" (sock_diag does not report `sk_userlocks`), as ss does in userspace.
    var ephemeralPorts: ClosedRange<UInt16>
    var context: FilterContext?

    func eval(_ e: FilterExpr, _ s: Socket) -> Bool {
        switch e {
        case .and(let a, let b): return eval(a, s) && eval(b, s)
        case .or(let a, let b): return eval(a, s) || eval(b, s)
        case .not(let a): return !eval(a, s)
        case .term(let t, _): return term(t, s)
        }
    }

    func term(_ t: FilterTerm, _ s: Socket) -> Bool {
        switch t {
        case .host(let side, let c):
            if s.isUnix {
                if c.inetOnly { return false }
                // ss knows only the local name of a unix socket; the peer's is matched as "".
                let name = side == .source ? (s.path ?? "") : ""
                return fnmatch(c.text, name, 1 << 4 /* FNM_CASEFOLD */) == 0
            }
            return Evaluator.hostMatches(c, address: side == .source ? s.source : s.destination,
                                         port: side == .source ? s.sourcePort : s.destinationPort,
                                         family: s.family)
        case .port(let side, let op, let p):
            if s.isUnix {  // ss: a unix socket's "ports" are its inode and its peer's inode
                let v = side == .source ? UInt64(s.inode) : UInt64(s.peerInode ?? 0)
                return op.holds(v, UInt64(p))
            }
            return op.holds(side == .source ? s.sourcePort : s.destinationPort, p)
        case .device(let name, let index):
            guard let i = index ?? context?.interfaceIndex(name) ?? FilterContext.systemInterfaceIndex(name)
                ?? HostParser.cNumber(name, max: UInt64(UInt32.max)).map({ UInt32($0) }) else { return false }
            return s.interfaceIndex == i
        case .mark(let v, let m):
            return ((s.mark ?? 0) & m) == v
        case .cgroup(let path, let id):
            guard let i = id ?? context?.resolveCgroup(path) ?? FilterContext.systemCgroupID(path) else { return false }
            return (s.cgroupID ?? 0) == i
        case .autobound:
            if s.isUnix {
                guard let p = s.path else { return true }
                let b = Array(p.utf8)
                return b.count == 6 && b[0] == UInt8(ascii: "@")
                    && b[1...].allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
            }
            // Kernel AUTO (no SOCK_BINDPORT_LOCK, unknowable from a dump) approximated by the port range,
            // and the range itself (which the compiled program also checks).
            return ephemeralPorts.contains(s.sourcePort)
        case .uid(let op, let n): return op.holds(s.uid, n)
        case .uidRange(let a, let b): return (a...b).contains(s.uid)
        case .pid(let p): return s.processes.contains { $0.pid == p }
        case .comm(let pattern): return s.processes.contains { fnmatch(pattern, $0.comm, 0) == 0 }
        case .cookie(let c): return s.cookie == c
        }
    }

    /// `INET_DIAG_BC_S_COND`/`D_COND` semantics (net/ipv4/inet_diag.c, inet_diag_bc_run).
    static func hostMatches(_ c: HostCondition, address: InetAddress?, port: UInt16, family: UInt8) -> Bool {
        if let p = c.port, p != port { return false }
        guard let prefix = c.inet, !c.unixOnly else { return false }
        guard let want = prefix.address else { return true }  // AF_UNSPEC
        let have = address ?? InetAddress(family: family, bytes: (0, 0))
        if want.family != family {
            // An IPv4 condition matches an IPv6 socket whose address is ::ffff:a.b.c.d.
            if family == UInt8(AF_INET6), want.isIPv4, let v4 = have.unmappedIPv4 {
                return prefixMatch(v4.networkBytes, want.networkBytes, prefix.prefixLength)
            }
            return false
        }
        if prefix.prefixLength == 0 { return true }
        return prefixMatch(have.networkBytes, want.networkBytes, prefix.prefixLength)
    }

    /// First `bits` bits equal (network order), as the kernel's `bitstring_match`.
    static func prefixMatch(_ a: [UInt8], _ b: [UInt8], _ bits: Int) -> Bool {
        let full = bits / 8
        for i in 0..<full where a[i] != b[i] { return false }
        let rem = bits % 8
        if rem == 0 { return true }
        let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - rem))
        return (a[full] ^ b[full]) & mask == 0
    }

    /// `net.ipv4.ip_local_port_range` of the calling thread's network namespace.
    static func localPortRange() -> ClosedRange<UInt16> {
        guard let f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r") else { return 32768...60999 }
        defer { fclose(f) }
        var lo: Int32 = 0, hi: Int32 = 0
        var buf = [CChar](repeating: 0, count: 64)
        guard fgets(&buf, 64, f) != nil else { return 32768...60999 }
        let parts = String(cString: buf).split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
        if parts.count == 2, let a = Int32(parts[0]), let b = Int32(parts[1]) { lo = a; hi = b }
        guard lo > 0, hi >= lo, hi <= 65535 else { return 32768...60999 }
        return UInt16(lo)...UInt16(hi)
    }
}

extension SocketFilter {
    /// False when no listening TCP socket of `family` can match the expression. A listener has no
    /// peer (destination: the unspecified address, port 0), so terms on the destination are decided
    /// for it and every other term is unknown; the expression is evaluated with three-valued logic.
    /// `dst 10.0.0.0/8` or `dport = :443` rule listeners out, and a dump may then leave LISTEN out of
    /// its state mask: the kernel skips its walk of the host-wide listening hash table.
    public func mayMatchListeners(family: UInt8) -> Bool {
        guard let e = expression else { return true }
        return Self.listenerValue(e, family: family) != false
    }

    /// The port every matching socket has on `side` (a top-level `sport = N` / `dport = N`, or a
    /// `src`/`dst` condition with a port, that the whole expression requires), or nil when none is
    /// required. A dump request can carry it (`inet_diag_sockid.idiag_sport`/`idiag_dport`) so that
    /// the kernel skips other sockets before running the bytecode. Port 0 means "any" there: never
    /// returned.
    public func requiredPort(_ side: FilterSide) -> UInt16? {
        guard let e = expression else { return nil }
        return Self.requiredPort(e, side)
    }

    static func requiredPort(_ e: FilterExpr, _ side: FilterSide) -> UInt16? {
        switch e {
        case .and(let a, let b):
            // Either one is required (when both name one, a socket must have both: the kernel's
            // pre-check on one and the bytecode on the other still select nothing wrongly).
            return requiredPort(a, side) ?? requiredPort(b, side)
        case .or(let a, let b):
            let x = requiredPort(a, side)
            return x != nil && x == requiredPort(b, side) ? x : nil
        case .not:
            return nil
        case .term(.port(let s, .eq, let p), _) where s == side && p != 0:
            return p
        case .term(.host(let s, let c), _) where s == side:
            return c.port.flatMap { $0 == 0 ? nil : $0 }
        case .term:
            return nil
        }
    }

    /// true / false when decided for every listener of `family`, nil when it depends on the socket.
    static func listenerValue(_ e: FilterExpr, family: UInt8) -> Bool? {
        switch e {
        case .and(let a, let b):
            let x = listenerValue(a, family: family), y = listenerValue(b, family: family)
            if x == false || y == false { return false }
            return x == true && y == true ? true : nil
        case .or(let a, let b):
            let x = listenerValue(a, family: family), y = listenerValue(b, family: family)
            if x == true || y == true { return true }
            return x == false && y == false ? false : nil
        case .not(let a):
            return listenerValue(a, family: family).map { !$0 }
        case .term(.host(.destination, let c), _):
            return Evaluator.hostMatches(c, address: nil, port: 0, family: family)
        case .term(.port(.destination, let op, let p), _):
            return op.holds(UInt16(0), p)
        case .term:
            return nil
        }
    }
}
