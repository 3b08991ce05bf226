import BPF
import SockDiag
import SocketFilter
#if canImport(Glibc)
import Glibc
#endif

/// Filter AST → `BPFDestroySpec` (an OR of AND-clauses over prefixes, port ranges, states, uid
/// ranges, plus a cookie set). The expression is brought to disjunctive normal form with negations
/// pushed to the leaves; a leaf becomes one or more alternative field constraints (`dport != 80` is
/// `0-79` or `81-65535`). What the clause form cannot say (device, fwmark, cgroup, autobound,
/// pid/comm, a negated address, a cookie mixed with other terms, more than 32 clauses) makes the
/// whole filter untranslatable, and `--backend auto` uses netlink.
enum BPFTranslation {
    enum Outcome {
        case spec(BPFDestroySpec)
        /// No inet socket can match (e.g. only unix path terms).
        case matchesNothing
        case untranslatable(String)
    }

    /// A literal: a term, possibly negated.
    typealias Literal = (term: FilterTerm, negated: Bool)

    struct NotTranslatable: Error { let reason: String }

    static func translate(filter: SocketFilter, states: UInt32, families: [UInt8], protocols: Set<BPFDestroySpec.TransportProtocol>,
                          cookies: Set<UInt64>?, dryRun: Bool) -> Outcome {
        let fams = Set(families)
        if !(fams.contains(UInt8(AF_INET)) && fams.contains(UInt8(AF_INET6))) {
            return .untranslatable("a single address family (-4/-6): BPF clauses treat IPv4 and IPv4-mapped IPv6 alike")
        }
        var cookieSet = cookies
        var clauses: [BPFDestroySpec.Clause] = []
        let stateSet: Set<UInt8>? = states == SocketState.allMask ? nil : Set((0..<32).filter { states & (1 << UInt32($0)) != 0 }.map { UInt8($0) })
        if let e = filter.expression {
            if let only = cookieDisjunction(e) {
                cookieSet = cookieSet.map { $0.intersection(only) } ?? only
                if stateSet != nil { clauses = [BPFDestroySpec.Clause(states: stateSet)] }
            } else {
                do {
                    let dnf = try normalForm(e, negated: false)
                    for conjunct in dnf {
                        for var c in try clausesFor(conjunct) {
                            c.states = stateSet
                            clauses.append(c)
                            if clauses.count > BPFDestroySpec.maxClauses {
                                throw NotTranslatable(reason: "more than \(BPFDestroySpec.maxClauses) BPF clauses")
                            }
                        }
                    }
                } catch let e as NotTranslatable {
                    return .untranslatable(e.reason)
                } catch {
                    return .untranslatable("\(error)")
                }
                if clauses.isEmpty { return .matchesNothing }
            }
        } else if stateSet != nil {
            clauses = [BPFDestroySpec.Clause(states: stateSet)]
        }
        if let c = cookieSet, c.isEmpty { return .matchesNothing }
        if let c = cookieSet, c.count > BPFDestroySpec.maxCookies { return .untranslatable("more than \(BPFDestroySpec.maxCookies) cookies") }
        let everything = clauses.isEmpty && cookieSet == nil
        return .spec(BPFDestroySpec(clauses: clauses, cookies: cookieSet, protocols: protocols, dryRun: dryRun, everything: everything))
    }

    /// `cookie A or cookie B or ...` → {A, B, ...}; nil for anything else.
    static func cookieDisjunction(_ e: FilterExpr) -> Set<UInt64>? {
        switch e {
        case .term(.cookie(let c), _): return [c]
        case .or(let a, let b):
            guard let x = cookieDisjunction(a), let y = cookieDisjunction(b) else { return nil }
            return x.union(y)
        default: return nil
        }
    }

    /// DNF: a list of conjunctions of literals. Capped to keep a pathological filter cheap.
    static func normalForm(_ e: FilterExpr, negated: Bool) throws -> [[Literal]] {
        let out: [[Literal]]
        switch (e, negated) {
        case (.term(let t, _), _): out = [[(t, negated)]]
        case (.not(let a), _): out = try normalForm(a, negated: !negated)
        case (.or(let a, let b), false), (.and(let a, let b), true):
            out = try normalForm(a, negated: negated) + normalForm(b, negated: negated)
        case (.and(let a, let b), false), (.or(let a, let b), true):
            let x = try normalForm(a, negated: negated), y = try normalForm(b, negated: negated)
            out = x.flatMap { l in y.map { r in l + r } }
        }
        if out.count > 4 * BPFDestroySpec.maxClauses {
            throw NotTranslatable(reason: "the filter expands to more than \(BPFDestroySpec.maxClauses) BPF clauses")
        }
        return out
    }

    /// One field constraint; a literal gives one or several alternatives.
    enum Constraint {
        case prefix(FilterSide, BPFPrefix)
        case port(FilterSide, ClosedRange<UInt16>)
        case uid(ClosedRange<UInt32>)
        case never
        case always
    }

    static func ranges<T: FixedWidthInteger>(_ op: FilterComparison, _ v: T, negated: Bool) -> [ClosedRange<T>] {
        var op = op
        if negated {
            switch op {
            case .eq: op = .ne
            case .ne: op = .eq
            case .lt: op = .ge
            case .le: op = .gt
            case .gt: op = .le
            case .ge: op = .lt
            }
        }
        switch op {
        case .eq: return [v...v]
        case .ne: return (v > T.min ? [T.min...(v - 1)] : []) + (v < T.max ? [(v + 1)...T.max] : [])
        case .lt: return v > T.min ? [T.min...(v - 1)] : []
        case .le: return [T.min...v]
        case .gt: return v < T.max ? [(v + 1)...T.max] : []
        case .ge: return [v...T.max]
        }
    }

    static func alternatives(_ l: Literal) throws -> [Constraint] {
        switch l.term {
        case .host(let side, let cond):
            // Unix-only patterns never match an inet socket.
            guard let inet = cond.inet, !cond.unixOnly else { return [l.negated ? .always : .never] }
            var parts: [Constraint] = []
            if let a = inet.address {
                let len = a.isIPv4 ? Swift.min(inet.prefixLength, 32) : inet.prefixLength
                guard let p = BPFPrefix("\(a)/\(len)") else { throw NotTranslatable(reason: "address \(a)/\(len)") }
                parts.append(.prefix(side, p))
            }
            if let port = cond.port { parts.append(.port(side, port...port)) }
            if !l.negated { return parts.isEmpty ? [.always] : parts }
            // not (ADDR[:PORT]) is a union of many prefixes: only the port-only form translates.
            if parts.isEmpty { return [.never] }
            guard inet.address == nil, let port = cond.port else {
                throw NotTranslatable(reason: "a negated address ('not \(side.rawValue) \(cond.text)')")
            }
            return ranges(.eq, port, negated: true).map { .port(side, $0) }
        case .port(let side, let op, let v):
            let r = ranges(op, v, negated: l.negated)
            return r.isEmpty ? [.never] : r.map { .port(side, $0) }
        case .uid(let op, let v):
            let r = ranges(op, v, negated: l.negated)
            return r.isEmpty ? [.never] : r.map { .uid($0) }
        case .uidRange(let a, let b):
            if !l.negated { return a <= b ? [.uid(a...b)] : [.never] }
            var r: [ClosedRange<UInt32>] = []
            if a > 0 { r.append(0...(a - 1)) }
            if b < .max { r.append((b + 1)...UInt32.max) }
            return r.isEmpty ? [.never] : r.map { .uid($0) }
        case .device, .mark, .cgroup, .autobound, .pid, .comm, .cookie:
            throw NotTranslatable(reason: "the term '\(l.term)' has no BPF clause form")
        }
    }

    /// The clauses of one conjunction (several when a literal has alternatives); [] = never matches.
    static func clausesFor(_ conjunct: [Literal]) throws -> [BPFDestroySpec.Clause] {
        var out: [BPFDestroySpec.Clause] = [BPFDestroySpec.Clause()]
        for lit in conjunct {
            // A positive host term with both address and port is an AND of two constraints.
            let alts = try alternatives(lit)
            let isConjunction: Bool = {
                if case .host(_, let c) = lit.term, !lit.negated, c.inet?.address != nil, c.port != nil, !c.unixOnly { return true }
                return false
            }()
            if isConjunction {
                out = out.compactMap { c in alts.reduce(Optional(c)) { acc, k in acc.flatMap { apply(k, to: $0) } } }
            } else {
                out = out.flatMap { c in alts.compactMap { apply($0, to: c) } }
            }
            if out.isEmpty { return [] }
            if out.count > BPFDestroySpec.maxClauses {
                throw NotTranslatable(reason: "more than \(BPFDestroySpec.maxClauses) BPF clauses")
            }
        }
        return out
    }

    /// Narrows `c` by `k`; nil when the result can match nothing.
    static func apply(_ k: Constraint, to c: BPFDestroySpec.Clause) -> BPFDestroySpec.Clause? {
        var c = c
        func meet<T>(_ a: ClosedRange<T>?, _ b: ClosedRange<T>) -> ClosedRange<T>? {
            guard let a else { return b }
            let lo = Swift.max(a.lowerBound, b.lowerBound), hi = Swift.min(a.upperBound, b.upperBound)
            return lo <= hi ? lo...hi : nil
        }
        func meetPrefix(_ a: BPFPrefix?, _ b: BPFPrefix) -> BPFPrefix?? {
            guard let a else { return .some(b) }
            // Prefixes either nest or are disjoint: keep the longer one when it lies inside the shorter.
            let (short, long) = a.length <= b.length ? (a, b) : (b, a)
            let inside = (0..<16).allSatisfy { i in long.bytes[i] & maskByte(i, short.length) == short.bytes[i] }
            return inside ? .some(long) : .none
        }
        switch k {
        case .always: return c
        case .never: return nil
        case .prefix(.source, let p):
            guard case .some(let m) = meetPrefix(c.source, p) else { return nil }
            c.source = m
        case .prefix(.destination, let p):
            guard case .some(let m) = meetPrefix(c.destination, p) else { return nil }
            c.destination = m
        case .port(.source, let r):
            guard let m = meet(c.sourcePorts, r) else { return nil }
            c.sourcePorts = m
        case .port(.destination, let r):
            guard let m = meet(c.destinationPorts, r) else { return nil }
            c.destinationPorts = m
        case .uid(let r):
            guard let m = meet(c.uids, r) else { return nil }
            c.uids = m
        }
        return c
    }

    static func maskByte(_ i: Int, _ length: Int) -> UInt8 {
        let bits = Swift.min(Swift.max(length - 8 * i, 0), 8)
        return bits == 0 ? 0 : UInt8(truncatingIfNeeded: 0xff << (8 - bits))
    }
}
