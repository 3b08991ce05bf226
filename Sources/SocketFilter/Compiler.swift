import CLinuxUAPI
import SockDiag

/// Lowers the AST for one address family to `INET_DIAG_BC_*` bytecode that over-approximates the
/// filter (terms the kernel cannot run become TRUE in positive position, FALSE under an odd number of
/// negations), plus the exact userspace remainder.
enum Compiler {
    /// Three-valued view of the AST for one family: known constant, kernel-decidable, or userspace-only.
    indirect enum K {
        case const(Bool)
        case leaf(FilterTerm)
        case unknown
        case and(K, K), or(K, K), not(K)
    }

    static func lower(_ e: FilterExpr, family: UInt8) -> K {
        switch e {
        case .and(let a, let b): return .and(lower(a, family: family), lower(b, family: family))
        case .or(let a, let b): return .or(lower(a, family: family), lower(b, family: family))
        case .not(let a): return .not(lower(a, family: family))
        case .term(let t, _):
            if case .host(_, let c) = t {
                if c.unixOnly || c.inet == nil { return .const(false) }
                if let a = c.inet?.address, family == UInt8(AF_INET), !a.isIPv4 { return .const(false) }
            }
            return t.kernelCompilable ? .leaf(t) : .unknown
        }
    }

    /// Replaces unknown leaves by the constant that keeps the program a superset of the filter.
    static func approximate(_ k: K, positive: Bool = true) -> K {
        switch k {
        case .unknown: return .const(positive)
        case .const, .leaf: return k
        case .and(let a, let b): return .and(approximate(a, positive: positive), approximate(b, positive: positive))
        case .or(let a, let b): return .or(approximate(a, positive: positive), approximate(b, positive: positive))
        case .not(let a): return .not(approximate(a, positive: !positive))
        }
    }

    static func fold(_ k: K) -> K {
        switch k {
        case .const, .leaf, .unknown: return k
        case .not(let a):
            let f = fold(a)
            if case .const(let v) = f { return .const(!v) }
            return .not(f)
        case .and(let a, let b):
            let fa = fold(a), fb = fold(b)
            if case .const(false) = fa { return .const(false) }
            if case .const(false) = fb { return .const(false) }
            if case .const(true) = fa { return fb }
            if case .const(true) = fb { return fa }
            return .and(fa, fb)
        case .or(let a, let b):
            let fa = fold(a), fb = fold(b)
            if case .const(true) = fa { return .const(true) }
            if case .const(true) = fb { return .const(true) }
            if case .const(false) = fa { return fb }
            if case .const(false) = fb { return fa }
            return .or(fa, fb)
        }
    }

    /// Emits code for `k` that falls through when true and jumps to `onFalse` when false.
    /// `ephemeral`: the namespace's `ip_local_port_range`; `autobound` is AUTO and a local port in it.
    static func emit(_ k: K, _ asm: inout Assembler, onFalse: Assembler.Label, ephemeral: ClosedRange<UInt16>) {
        switch k {
        case .const(true): return
        case .const(false): asm.jump(to: onFalse)
        case .unknown: preconditionFailure("approximate before emitting")
        case .and(let a, let b):
            emit(a, &asm, onFalse: onFalse, ephemeral: ephemeral)
            emit(b, &asm, onFalse: onFalse, ephemeral: ephemeral)
        case .or(let a, let b):
            let tryB = asm.newLabel(), done = asm.newLabel()
            emit(a, &asm, onFalse: tryB, ephemeral: ephemeral)
            asm.jump(to: done)
            asm.place(tryB)
            emit(b, &asm, onFalse: onFalse, ephemeral: ephemeral)
            asm.place(done)
        case .not(let a):
            let ok = asm.newLabel()
            emit(a, &asm, onFalse: ok, ephemeral: ephemeral)
            asm.jump(to: onFalse)
            asm.place(ok)
        case .leaf(let t):
            emitLeaf(t, &asm, onFalse: onFalse, ephemeral: ephemeral)
        }
    }

    static func emitLeaf(_ t: FilterTerm, _ asm: inout Assembler, onFalse: Assembler.Label, ephemeral: ClosedRange<UInt16>) {
        switch t {
        case .host(let side, let c):
            asm.emit(side == .source ? .sCond : .dCond, hostcond(c.inet, port: c.port), onFalse: onFalse)
        case .port(let side, let op, let p):
            let src = side == .source
            let portOp = [UInt8(0), 0] + LE.u16(p)   // a second inet_diag_bc_op whose `no` is the port
            switch op {
            case .eq: asm.emit(src ? .sCond : .dCond, hostcond(nil, port: p), onFalse: onFalse)
            case .ne: emit(.not(.leaf(.port(side, .eq, p))), &asm, onFalse: onFalse, ephemeral: ephemeral)
            case .ge: asm.emit(src ? .sGE : .dGE, portOp, onFalse: onFalse)
            case .le: asm.emit(src ? .sLE : .dLE, portOp, onFalse: onFalse)
            case .gt: emit(.not(.leaf(.port(side, .le, p))), &asm, onFalse: onFalse, ephemeral: ephemeral)
            case .lt: emit(.not(.leaf(.port(side, .ge, p))), &asm, onFalse: onFalse, ephemeral: ephemeral)
            }
        case .device(_, let index):
            asm.emit(.devCond, LE.u32(index ?? 0), onFalse: onFalse)
        case .mark(let v, let m):
            asm.emit(.markCond, LE.u32(v) + LE.u32(m), onFalse: onFalse)
        case .cgroup(_, let id):
            asm.emit(.cgroupCond, LE.u64(id ?? 0), onFalse: onFalse)
        case .autobound:
            // The kernel's AUTO alone also holds for accepted sockets (a child socket carries no
            // SOCK_BINDPORT_LOCK); ss checks the ephemeral range in userspace too. Both, in the kernel:
            asm.emit(.auto, onFalse: onFalse)
            asm.emit(.sGE, [0, 0] + LE.u16(ephemeral.lowerBound), onFalse: onFalse)
            asm.emit(.sLE, [0, 0] + LE.u16(ephemeral.upperBound), onFalse: onFalse)
        case .uid, .uidRange, .pid, .comm, .cookie:
            preconditionFailure("not a kernel term")
        }
    }

    /// `struct inet_diag_hostcond` + address, laid out as ss does (4 address bytes for AF_UNSPEC).
    static func hostcond(_ p: InetPrefix?, port: UInt16?) -> [UInt8] {
        let family = p?.address?.family ?? UInt8(AF_UNSPEC)
        var out: [UInt8] = [family, UInt8(p?.address == nil ? 0 : p!.prefixLength), 0, 0]
        out += LE.u32(port.map { UInt32($0) } ?? UInt32(bitPattern: -1))
        out += p?.address?.networkBytes ?? [0, 0, 0, 0]
        return out
    }

    /// Conjuncts of a top-level `and` chain.
    static func conjuncts(_ e: FilterExpr) -> [FilterExpr] {
        if case .and(let a, let b) = e { return conjuncts(a) + conjuncts(b) }
        return [e]
    }

    static func containsUnknown(_ k: K) -> Bool {
        switch k {
        case .unknown: return true
        case .const, .leaf: return false
        case .and(let a, let b), .or(let a, let b): return containsUnknown(a) || containsUnknown(b)
        case .not(let a): return containsUnknown(a)
        }
    }
}
