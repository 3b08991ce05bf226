#if canImport(Glibc)
import Glibc
#endif
import CLinuxUAPI
import SockDiag

/// How names in a filter become numbers, evaluated inside the target network namespace (interface
/// indexes are per namespace). `system` uses the calling thread's namespace and the cgroup2 mount.
public struct FilterContext: @unchecked Sendable {
    public var resolveInterface: (String) -> UInt32?
    /// cgroup v2 id of a path: the inode of the cgroup directory.
    public var resolveCgroup: (String) -> UInt64?
    /// `net.ipv4.ip_local_port_range` of the target namespace: userspace stand-in for `autobound`.
    public var ephemeralPorts: ClosedRange<UInt16>

    public init(resolveInterface: @escaping (String) -> UInt32?,
                resolveCgroup: @escaping (String) -> UInt64?,
                ephemeralPorts: ClosedRange<UInt16> = 32768...60999) {
        self.resolveInterface = resolveInterface
        self.resolveCgroup = resolveCgroup
        self.ephemeralPorts = ephemeralPorts
    }

    /// Name first (if_nametoindex), then a number, as ss's `dev` does.
    func interfaceIndex(_ name: String) -> UInt32? {
        if let i = resolveInterface(name) { return i }
        if let n = HostParser.cNumber(name, max: UInt64(UInt32.max)) { return UInt32(n) }
        return nil
    }

    /// if_nametoindex(3) in the calling thread's network namespace.
    public static func systemInterfaceIndex(_ name: String) -> UInt32? {
        let i = if_nametoindex(name)
        return i == 0 ? nil : i
    }

    /// cgroup v2 id of `path`: the inode of the directory, for the path as given when it lies on a
    /// cgroup2 file system, else relative to the cgroup2 mount (iproute2's get_cgroup2_id does the same).
    public static func systemCgroupID(_ path: String) -> UInt64? {
        func dirInode(_ p: String) -> UInt64? {
            var st = stat()
            guard stat(p, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { return nil }
            return UInt64(st.st_ino)
        }
        guard let mount = cgroup2Mount() else { return nil }
        if path == mount || path.hasPrefix(mount + "/") { return dirInode(path) }
        let rel = path.drop(while: { $0 == "/" })
        return dirInode(rel.isEmpty ? mount : mount + "/" + rel)
    }

    /// The first cgroup2 mount point in /proc/self/mounts.
    static func cgroup2Mount() -> String? {
        guard let f = fopen("/proc/self/mounts", "r") else { return nil }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 4096)
        while fgets(&line, Int32(line.count), f) != nil {
            let fields = String(cString: line).split(separator: " ")
            if fields.count > 2, fields[2] == "cgroup2" { return String(fields[1]) }
        }
        return nil
    }

    /// The calling thread's namespace: interfaces, cgroups and `ip_local_port_range` as seen from it.
    /// Build it on the thread that has entered the target namespace.
    public static var system: FilterContext {
        FilterContext(resolveInterface: systemInterfaceIndex, resolveCgroup: systemCgroupID,
                      ephemeralPorts: Evaluator.localPortRange())
    }

    /// `system` for compiling `filter`: `ip_local_port_range` is read only when the filter has an
    /// `autobound` term, the one term that uses it (a dump per namespace then reads no /proc/sys file).
    public static func system(for filter: SocketFilter) -> FilterContext {
        guard filter.expression?.anyTerm({ $0 == .autobound }) == true else {
            return FilterContext(resolveInterface: systemInterfaceIndex, resolveCgroup: systemCgroupID)
        }
        return system
    }
}

/// A term whose name could not be resolved in the target namespace (unknown device, bad cgroup).
public struct FilterCompileError: Error, CustomStringConvertible, Equatable {
    public var term: String
    public var column: Int
    public var message: String
    public var description: String { "filter error at column \(column): \(message) ('\(term)')" }
}

/// The bytecode for one family plus the userspace remainder.
public struct CompiledFilter: Sendable {
    /// `INET_DIAG_REQ_BYTECODE` payload; empty = send no bytecode (the kernel returns every socket).
    public var bytecode: [UInt8]
    /// True when the bytecode alone decides the filter (`matches` is then always true).
    public var exact: Bool { residual == nil }
    /// True when no socket of this family can match: the caller may skip the dump.
    public var matchesNothing: Bool
    /// True when the residual reads `socket.processes` (pid/comm).
    public var needsProcesses: Bool
    let residual: FilterExpr?
    let evaluator: Evaluator

    /// The residual predicate for a socket the kernel returned; true when `exact`.
    public func matches(_ s: Socket) -> Bool {
        guard let r = residual else { return true }
        return evaluator.eval(r, s)
    }
    /// The residual in S-expression form (nil when exact), for diagnostics and tests.
    public var residualDescription: String? { residual?.description }
}

/// A parsed filter: ss's FILTER language plus `uid`, `pid`, `comm`, `cookie`.
///
/// Typical use by a dumper (one network namespace, on the thread that entered it):
/// ```swift
/// let f = try SocketFilter.parse(argv.joined(separator: " "))   // FilterSyntaxError -> exit 2
/// let states = f.stateMask ?? StateNames.defaultConnected          // or StateNames.all with -a
/// for family in [AF_INET, AF_INET6] where f.families?.contains(family) ?? true {
///     let c = try f.compile(family: family, context: .system)     // FilterCompileError -> exit 2
///     if c.matchesNothing { continue }
///     // send inet_diag_req_v2 with idiag_states = states and, unless empty,
///     // INET_DIAG_REQ_BYTECODE = c.bytecode; then for each socket the kernel returns:
///     //   if c.needsProcesses { fill socket.processes }; keep it when c.matches(socket)
/// }
/// // AF_UNIX: compile(family: AF_UNIX) gives no bytecode; every socket goes through c.matches.
/// ```
/// `and`/`or` have equal precedence and group left to right, exactly as in ss
/// (`a or b and c` is `(a or b) and c`); `not` binds to the next term.
public struct SocketFilter: Sendable, CustomStringConvertible {
    /// The expression; nil when the filter has only state selectors (or is empty).
    public var expression: FilterExpr?
    /// From `state`/`exclude` (ss's rules: the first `state` starts from none, the first `exclude` from
    /// all); nil when not given, and the caller applies ss's default.
    public var stateMask: UInt32?
    /// The text as parsed.
    public var text: String

    public init(expression: FilterExpr?, stateMask: UInt32?, text: String = "") {
        self.expression = expression
        self.stateMask = stateMask
        self.text = text
    }

    /// Parses `text` (argv joined with single spaces). Throws `FilterSyntaxError`.
    public static func parse(_ text: String) throws -> SocketFilter {
        var p = Parser(text)
        let e = try p.parseAll()
        return SocketFilter(expression: e, stateMask: p.stateMask, text: text)
    }

    public var description: String {
        (stateMask.map { "states=0x\(String($0, radix: 16)) " } ?? "") + (expression?.description ?? "(true)")
    }

    /// No expression and no state selector.
    public var isEmpty: Bool { expression == nil && stateMask == nil }

    /// The expression reads `socket.processes` (pid, comm): fill them before `matches`.
    public var needsProcesses: Bool { expression?.anyTerm { $0.needsProcesses } ?? false }

    /// True when `compile` gives the same result in every network namespace: no `dev NAME` (the
    /// name is resolved in the namespace) and no `autobound` (it reads the namespace's
    /// `ip_local_port_range`). Cgroup paths resolve through the mount namespace, which a thread
    /// entering a network namespace keeps.
    public var compilesAlikeInEveryNamespace: Bool {
        !(expression?.anyTerm { t in
            switch t {
            case .device(_, nil), .autobound: return true
            default: return false
            }
        } ?? false)
    }

    /// Families (`AF_INET`, `AF_INET6`, `AF_UNIX`) some socket of which could match; nil = all.
    public var families: Set<UInt8>? {
        guard let e = expression else { return nil }
        var out: Set<UInt8> = []
        for f in [AF_INET, AF_INET6] {
            let k = Compiler.fold(Compiler.approximate(Compiler.lower(e, family: UInt8(f))))
            if case .const(false) = k { continue }
            out.insert(UInt8(f))
        }
        out.insert(UInt8(AF_UNIX))  // unix sockets: everything is userspace; never excluded up front
        return out.count == 3 ? nil : out
    }

    /// Resolves device names and cgroup paths through `context`. Throws `FilterCompileError`.
    public func resolved(in context: FilterContext) throws -> SocketFilter {
        guard let e = expression else { return self }
        var copy = self
        copy.expression = try e.mapTerms { t, col in
            switch t {
            case .device(let name, nil):
                guard let i = context.interfaceIndex(name) else {
                    throw FilterCompileError(term: "dev \(name)", column: col, message: "no network interface named '\(name)' in the target namespace")
                }
                return .device(name: name, index: i)
            case .cgroup(let path, nil):
                guard let id = context.resolveCgroup(path) else {
                    throw FilterCompileError(term: "cgroup \(path)", column: col, message: "'\(path)' is not a cgroup v2 directory")
                }
                return .cgroup(path: path, id: id)
            default: return t
            }
        }
        return copy
    }

    /// Whole-expression evaluation in userspace (daemon rules, BPF-backend sockets). Device names and
    /// cgroup paths not yet resolved (see `resolved(in:)`) are resolved through `FilterContext.system`.
    public func matches(_ s: Socket) -> Bool {
        matches(s, ephemeralPorts: SocketFilter.defaultEphemeral)
    }

    public func matches(_ s: Socket, ephemeralPorts: ClosedRange<UInt16>) -> Bool {
        guard let e = expression else { return true }
        return Evaluator(ephemeralPorts: ephemeralPorts, context: nil).eval(e, s)
    }

    static let defaultEphemeral = Evaluator.localPortRange()

    /// Bytecode for a dump of `family` plus the residual. For `AF_UNIX` the bytecode is empty
    /// (the kernel has no unix bytecode) and the whole expression is residual.
    public func compile(family: UInt8, context: FilterContext) throws -> CompiledFilter {
        let r = try resolved(in: context)
        let ev = Evaluator(ephemeralPorts: context.ephemeralPorts, context: context)
        guard let e = r.expression else {
            return CompiledFilter(bytecode: [], matchesNothing: false, needsProcesses: false, residual: nil, evaluator: ev)
        }
        if family == UInt8(AF_UNIX) {
            return CompiledFilter(bytecode: [], matchesNothing: false, needsProcesses: r.needsProcesses, residual: e, evaluator: ev)
        }
        let k = Compiler.fold(Compiler.approximate(Compiler.lower(e, family: family)))
        // The residual: conjuncts the kernel cannot decide exactly.
        let rest = Compiler.conjuncts(e).filter { Compiler.containsUnknown(Compiler.lower($0, family: family)) }
        let residual = rest.isEmpty ? nil : rest.dropFirst().reduce(rest[0]) { .and($0, $1) }
        let needsProc = residual?.anyTerm { $0.needsProcesses } ?? false
        var bytecode: [UInt8] = []
        var nothing = false
        switch k {
        case .const(true): bytecode = []
        case .const(false):
            nothing = true
            var asm = Assembler()
            asm.jump(to: asm.reject)
            bytecode = try asm.assemble()
        default:
            var asm = Assembler()
            Compiler.emit(k, &asm, onFalse: asm.reject, ephemeral: context.ephemeralPorts)
            do { bytecode = try asm.assemble() } catch {
                throw FilterCompileError(term: text, column: 1, message: "filter too large for kernel bytecode (jumps over 64 KiB)")
            }
        }
        return CompiledFilter(bytecode: bytecode, matchesNothing: nothing, needsProcesses: needsProc, residual: residual, evaluator: ev)
    }
}
