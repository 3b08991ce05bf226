import Namespaces
import SockDiag
import SocketFilter
#if canImport(Glibc)
import Glibc
#endif

/// A filter with pid/comm terms reached the dump without a process lookup (a programming error).
public struct ProcessLookupMissing: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "internal error: a pid/comm filter needs the process index" }
}

/// The socket-inode → processes lookup, built once; the /proc scan runs alongside the dumps and
/// a socket waits for it only when it needs it. Safe to share between namespace threads.
public final class ProcessLookup: @unchecked Sendable {
    private let pending: PendingProcessIndex
    private var index: ProcessIndex?
    private let lock = POSIXMutex()
    public init() throws { pending = try ProcessIndex.start() }
    public func owners(_ inode: UInt32) throws -> [SocketProcess] {
        let idx: ProcessIndex = try lock.withLock {
            if let index { return index }
            let built = try pending.wait()
            index = built
            return built
        }
        return idx.owners(of: UInt64(inode))
    }
}

/// Selecting sockets in one network namespace: kernel bytecode first, then the userspace residual.
/// Shared by `sockctl list`, `sockctl kill` and `SocketKiller`.
public enum SocketSelection {
    /// Kernel state masks: SYN-RECV also selects request sockets (TCP_NEW_SYN_RECV), as ss shows them.
    public static func kernelStateMask(_ mask: UInt32) -> UInt32 {
        mask & SocketState.synRecv.mask != 0 ? mask | SocketState.newSynRecv.mask : mask
    }

    /// Dumps every selected socket in the current thread's namespace, calling `body` for each that
    /// passes the filter (and `extra`, when given). Runs on a thread that is already in the target
    /// namespace. `states` is used for a kind when the filter names no state. `tcpInOneWalk`: TCP
    /// sockets of both families from one walk of the kernel's tables (DumpQuery.tcpInOneWalk).
    /// `client`: dump on this session (made in the same namespace) instead of a new one.
    /// `compiler`: shares one compilation of the filter between the namespaces of one kill or
    /// listing, when the filter compiles alike in every namespace.
    public static func collect(kinds: [SocketKind], families: [UInt8], filter: SocketFilter,
                               states: (SocketKind) -> UInt32, extensions: InetDiagExtensions,
                               label: String?, owners: ((UInt32) throws -> [SocketProcess])? = nil,
                               extra: ((Socket) -> Bool)? = nil, tcpInOneWalk: Bool = false,
                               client: SockDiagClient? = nil, compiler: SelectionCompiler? = nil,
                               _ body: (Socket, String?) throws -> Void) throws {
        let client = try client ?? SockDiagClient()
        let selection = try compiler?.get(filter: filter, kinds: kinds, families: families)
            ?? CompiledSelection(filter: filter, kinds: kinds, families: families)
        var ifnames: [UInt32: String]?
        for kind in kinds {
            let fams: [UInt8] = kind.isUnix ? [UInt8(AF_UNIX)] : families.filter { selection.compiled[$0].map { !$0.matchesNothing } ?? false }
            if kind.isUnix, selection.unixFilter?.matchesNothing ?? true { continue }
            var mask = kernelStateMask(filter.stateMask ?? states(kind))
            // No listener can match (e.g. a dst or dport term): the kernel then skips its walk of
            // the host-wide listening hash, once per namespace.
            if kind == .tcp && !fams.contains(where: { filter.mayMatchListeners(family: $0) }) {
                mask &= ~SocketState.listen.mask
                if mask == 0 { continue }
            }
            var query = DumpQuery(kinds: [kind], families: fams, states: mask)
            query.extensions = extensions
            // Both families' programs come from one expression and differ only in host terms the
            // kernel checks per socket family, so the AF_INET6 program is right for both.
            query.tcpInOneWalk = tcpInOneWalk && kind == .tcp && fams.count == 2
            if kind == .tcp {
                // A port the filter requires is checked by the kernel before the bytecode.
                query.tcpSourcePort = filter.requiredPort(.source) ?? 0
                query.tcpDestinationPort = filter.requiredPort(.destination) ?? 0
            }
            for f in fams { if let c = selection.compiled[f] { query.bytecode[f] = c.bytecode } }
            try client.dump(query) { s in
                if let extra, !extra(s) { return }
                if let r = selection.residual(for: s) {
                    // pid/comm terms are decided on the processes holding the socket, looked up first.
                    if r.needsProcesses {
                        guard let owners else { throw ProcessLookupMissing() }
                        s.processes = try owners(s.inode)
                    }
                    if !r.matches(s) { return }
                }
                s.netns = label
                var iface: String?
                if s.interfaceIndex != 0 {
                    if ifnames == nil { ifnames = (try? Interfaces.names()) ?? [:] }
                    iface = ifnames?[s.interfaceIndex] ?? String(s.interfaceIndex)
                }
                try body(s, iface)
            }
        }
    }
}

/// A filter compiled for the families and kinds of one selection, with the residual checks by
/// family (nil where the kernel's bytecode decides alone, so that the per-socket path neither probes
/// a dictionary nor copies a compiled filter).
struct CompiledSelection {
    var compiled: [UInt8: CompiledFilter] = [:]
    var unixFilter: CompiledFilter?
    var residual4: CompiledFilter?
    var residual6: CompiledFilter?
    var residualUnix: CompiledFilter?
    /// Whether any family has a residual at all (most filters: none, and the per-socket check
    /// ends here).
    var anyResidual = false

    /// Compiles in the calling thread's namespace (device names, `ip_local_port_range`).
    init(filter: SocketFilter, kinds: [SocketKind], families: [UInt8]) throws {
        let context = FilterContext.system(for: filter)
        let possible = filter.families
        for f in families where possible?.contains(f) ?? true {
            compiled[f] = try filter.compile(family: f, context: context)
        }
        if kinds.contains(where: { $0.isUnix }) { unixFilter = try filter.compile(family: UInt8(AF_UNIX), context: context) }
        residual4 = compiled[UInt8(AF_INET)].flatMap { $0.exact ? nil : $0 }
        residual6 = compiled[UInt8(AF_INET6)].flatMap { $0.exact ? nil : $0 }
        residualUnix = unixFilter.flatMap { $0.exact ? nil : $0 }
        anyResidual = residual4 != nil || residual6 != nil || residualUnix != nil
    }

    /// The userspace check `s` still needs after the kernel's bytecode, nil when none.
    @inline(__always)
    func residual(for s: Socket) -> CompiledFilter? {
        guard anyResidual else { return nil }
        return s.isUnix ? residualUnix : s.family == UInt8(AF_INET) ? residual4 : residual6
    }
}

/// One compilation of a selection's filter shared by every namespace it runs in (a kill or listing
/// over hundreds of namespaces compiled the same filter hundreds of times). Used with one filter,
/// kinds and families only; a filter that compiles differently per namespace is compiled each time.
public final class SelectionCompiler: @unchecked Sendable {
    private let lock = POSIXMutex()
    private var done: CompiledSelection?

    public init() {}

    func get(filter: SocketFilter, kinds: [SocketKind], families: [UInt8]) throws -> CompiledSelection {
        guard filter.compilesAlikeInEveryNamespace else {
            return try CompiledSelection(filter: filter, kinds: kinds, families: families)
        }
        return try lock.withLock {
            if let done { return done }
            let c = try CompiledSelection(filter: filter, kinds: kinds, families: families)
            done = c
            return c
        }
    }
}
