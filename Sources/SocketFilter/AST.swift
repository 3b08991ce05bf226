import SockDiag

/// Which end of a socket a term looks at: `src`/`sport` (local) or `dst`/`dport` (remote).
public enum FilterSide: String, Sendable, Equatable {
    case source = "src", destination = "dst"
}

/// A comparison operator of the filter language (`= != < <= > >=` and their word forms).
public enum FilterComparison: String, Sendable, Equatable {
    case eq = "=", ne = "!=", lt = "<", le = "<=", gt = ">", ge = ">="

    func holds<T: Comparable>(_ lhs: T, _ rhs: T) -> Bool {
        switch self {
        case .eq: return lhs == rhs
        case .ne: return lhs != rhs
        case .lt: return lhs < rhs
        case .le: return lhs <= rhs
        case .gt: return lhs > rhs
        case .ge: return lhs >= rhs
        }
    }
}

/// An address prefix as `struct inet_diag_hostcond` carries it: family + prefix length + address.
/// `address == nil` is ss's wildcard (`*`, `any`): family `AF_UNSPEC`, prefix length 0.
public struct InetPrefix: Sendable, Equatable, CustomStringConvertible {
    public var address: InetAddress?
    public var prefixLength: Int

    public init(address: InetAddress?, prefixLength: Int) {
        self.address = address
        self.prefixLength = prefixLength
    }

    public var description: String {
        guard let a = address else { return "*" }
        return "\(a)/\(prefixLength)"
    }
}

/// The operand of `src`/`dst`: ss's "host condition". For inet sockets it is an address prefix and/or
/// a port; for unix sockets the same text is a shell pattern matched against the socket's path (as ss
/// does with `-x`).
public struct HostCondition: Sendable, Equatable, CustomStringConvertible {
    /// The text as written, without a `unix:`/`inet:`/`inet6:` prefix: the unix pattern.
    public var text: String
    /// The inet reading of the text; nil when the text is only a unix path pattern.
    public var inet: InetPrefix?
    /// Port to match (`ADDR:PORT`); nil = any port (`inet_diag_hostcond.port` = -1).
    public var port: UInt16?
    /// True when written with `unix:` (never matches inet sockets).
    public var unixOnly: Bool
    /// True when written with `inet:`/`inet6:` (never matches unix sockets).
    public var inetOnly: Bool

    public init(text: String, inet: InetPrefix?, port: UInt16?, unixOnly: Bool = false, inetOnly: Bool = false) {
        self.text = text
        self.inet = inet
        self.port = port
        self.unixOnly = unixOnly
        self.inetOnly = inetOnly
    }

    public var description: String {
        if unixOnly || inet == nil { return "unix:\(text)" }
        var s = inet!.description
        if let p = port { s += " port \(p)" }
        return s
    }
}

/// A leaf of the filter expression.
public enum FilterTerm: Sendable, Equatable, CustomStringConvertible {
    /// `src COND` / `dst COND`.
    case host(FilterSide, HostCondition)
    /// `sport OP PORT` / `dport OP PORT`.
    case port(FilterSide, FilterComparison, UInt16)
    /// `dev NAME|INDEX`: the bound interface (`idiag_if`). `index` is filled when resolved.
    case device(name: String, index: UInt32?)
    /// `fwmark VALUE[/MASK]`: `(sk_mark & mask) == value` (`struct inet_diag_markcond`).
    case mark(value: UInt32, mask: UInt32)
    /// `cgroup PATH`: the cgroup v2 id (inode of the directory). `id` is filled when resolved.
    case cgroup(path: String, id: UInt64?)
    /// `autobound`: the kernel chose the local port (no `SOCK_BINDPORT_LOCK`).
    case autobound
    /// `uid OP N` (ours).
    case uid(FilterComparison, UInt32)
    /// `uid N-M` (ours): inclusive range.
    case uidRange(UInt32, UInt32)
    /// `pid N` (ours): any process holding the socket.
    case pid(Int32)
    /// `comm PATTERN` (ours): any holder's command name, shell pattern.
    case comm(String)
    /// `cookie N` (ours): the kernel socket cookie.
    case cookie(UInt64)

    public var description: String {
        switch self {
        case .host(let side, let c): return "\(side.rawValue) \(c)"
        case .port(let side, let op, let p): return "\(side == .source ? "sport" : "dport") \(op.rawValue) \(p)"
        case .device(let n, let i): return i.map { "dev \(n)#\($0)" } ?? "dev \(n)"
        case .mark(let v, let m): return "fwmark 0x\(String(v, radix: 16))/0x\(String(m, radix: 16))"
        case .cgroup(let p, let id): return id.map { "cgroup \(p)#\($0)" } ?? "cgroup \(p)"
        case .autobound: return "autobound"
        case .uid(let op, let n): return "uid \(op.rawValue) \(n)"
        case .uidRange(let a, let b): return "uid \(a)-\(b)"
        case .pid(let p): return "pid \(p)"
        case .comm(let c): return "comm \(c)"
        case .cookie(let c): return "cookie \(c)"
        }
    }

    /// Whether `INET_DIAG_BC_*` bytecode can decide this term exactly for an inet socket.
    var kernelCompilable: Bool {
        switch self {
        case .host(_, let c): return c.inet != nil && !c.unixOnly
        case .port, .device, .mark, .cgroup, .autobound: return true
        case .uid, .uidRange, .pid, .comm, .cookie: return false
        }
    }

    var needsProcesses: Bool {
        switch self {
        case .pid, .comm: return true
        default: return false
        }
    }
}

/// The typed syntax tree. `and`/`or` have equal precedence and group left to right, as in ss.
public indirect enum FilterExpr: Sendable, Equatable, CustomStringConvertible {
    case and(FilterExpr, FilterExpr)
    case or(FilterExpr, FilterExpr)
    case not(FilterExpr)
    /// A leaf and the 1-based column where it starts in the filter text.
    case term(FilterTerm, column: Int)

    /// S-expression rendering used by golden tests: `(and (or A B) (not C))`.
    public var description: String {
        switch self {
        case .and(let a, let b): return "(and \(a) \(b))"
        case .or(let a, let b): return "(or \(a) \(b))"
        case .not(let a): return "(not \(a))"
        case .term(let t, _): return "[\(t)]"
        }
    }

    func anyTerm(_ p: (FilterTerm) -> Bool) -> Bool {
        switch self {
        case .and(let a, let b), .or(let a, let b): return a.anyTerm(p) || b.anyTerm(p)
        case .not(let a): return a.anyTerm(p)
        case .term(let t, _): return p(t)
        }
    }

    func mapTerms(_ f: (FilterTerm, Int) throws -> FilterTerm) rethrows -> FilterExpr {
        switch self {
        case .and(let a, let b): return .and(try a.mapTerms(f), try b.mapTerms(f))
        case .or(let a, let b): return .or(try a.mapTerms(f), try b.mapTerms(f))
        case .not(let a): return .not(try a.mapTerms(f))
        case .term(let t, let c): return .term(try f(t, c), column: c)
        }
    }
}
