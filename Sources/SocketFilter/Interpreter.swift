import CLinuxUAPI
import SockDiag

/// What the kernel looks at when it runs bytecode on a socket: `struct inet_diag_entry`
/// (net/ipv4/inet_diag.c, filled by inet_diag_bc_sk).
public struct DiagEntry: Sendable {
    public var family: UInt8
    /// 4 (AF_INET) or 16 (AF_INET6) network-order bytes.
    public var sourceAddress: [UInt8]
    public var destinationAddress: [UInt8]
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var interfaceIndex: UInt32
    /// `sk_userlocks` (0 for time-wait and request sockets).
    public var userlocks: UInt16
    public var mark: UInt32
    public var cgroupID: UInt64

    /// `SOCK_BINDPORT_LOCK` in include/net/sock.h.
    public static let bindPortLock: UInt16 = 8

    /// The entry the kernel would build for `s`. `bindPortLocked`: whether the port was chosen by
    /// bind(2) (not reported by sock_diag, so the caller states it).
    public init(socket s: Socket, bindPortLocked: Bool) {
        family = s.family
        let len = s.family == UInt8(AF_INET6) ? 16 : 4
        func bytes(_ a: InetAddress?) -> [UInt8] {
            guard let a, a.length == len else { return [UInt8](repeating: 0, count: len) }
            return a.networkBytes
        }
        sourceAddress = bytes(s.source)
        destinationAddress = bytes(s.destination)
        sourcePort = s.sourcePort
        destinationPort = s.destinationPort
        interfaceIndex = s.interfaceIndex
        let full = s.state != .timeWait && s.state != .newSynRecv
        userlocks = full && bindPortLocked ? DiagEntry.bindPortLock : 0
        mark = s.mark ?? 0
        cgroupID = full ? (s.cgroupID ?? 0) : 0
    }
}

/// A Swift rendering of the kernel's bytecode machine: `inet_diag_bc_run` and `inet_diag_bc_audit`.
public enum BytecodeInterpreter {
    /// Runs `bc` on `e` exactly as inet_diag_bc_run does: true when the program runs off its end
    /// exactly. Call `audit` first: like the kernel, this assumes an audited program.
    public static func run(_ bc: [UInt8], on e: DiagEntry) -> Bool {
        var pc = 0
        var len = bc.count
        while len > 0 {
            let code = bc[pc], yesOff = Int(bc[pc + 1]), noOff = Int(LE.readU16(bc, pc + 2))
            var yes = true
            switch BytecodeOp(rawValue: code) {
            case .nop?: break
            case .jmp?: yes = false
            case .sEQ?: yes = e.sourcePort == LE.readU16(bc, pc + 6)
            case .sGE?: yes = e.sourcePort >= LE.readU16(bc, pc + 6)
            case .sLE?: yes = e.sourcePort <= LE.readU16(bc, pc + 6)
            case .dEQ?: yes = e.destinationPort == LE.readU16(bc, pc + 6)
            case .dGE?: yes = e.destinationPort >= LE.readU16(bc, pc + 6)
            case .dLE?: yes = e.destinationPort <= LE.readU16(bc, pc + 6)
            case .auto?: yes = e.userlocks & DiagEntry.bindPortLock == 0
            case .sCond?, .dCond?:
                yes = hostcond(bc, pc, source: code == BytecodeOp.sCond.rawValue, e)
            case .devCond?: yes = LE.readU32(bc, pc + 4) == e.interfaceIndex
            case .markCond?: yes = e.mark & LE.readU32(bc, pc + 8) == LE.readU32(bc, pc + 4)
            case .cgroupCond?: yes = LE.readU64(bc, pc + 4) == e.cgroupID
            case nil: break
            }
            let step = yes ? yesOff : noOff
            len -= step
            pc += step
        }
        return len == 0
    }

    private static func hostcond(_ bc: [UInt8], _ pc: Int, source: Bool, _ e: DiagEntry) -> Bool {
        let family = bc[pc + 4], plen = Int(bc[pc + 5])
        let port = Int32(bitPattern: LE.readU32(bc, pc + 8))
        let entryPort = Int32(source ? e.sourcePort : e.destinationPort)
        if port != -1 && port != entryPort { return false }
        let addr = source ? e.sourceAddress : e.destinationAddress
        let want = Array(bc[(pc + 12)..<min(bc.count, pc + 12 + (family == UInt8(AF_INET6) ? 16 : 4))])
        if family != UInt8(AF_UNSPEC) && family != e.family {
            if e.family == UInt8(AF_INET6), family == UInt8(AF_INET),
               addr[0..<10].allSatisfy({ $0 == 0 }), addr[10] == 0xFF, addr[11] == 0xFF,
               Evaluator.prefixMatch(Array(addr[12..<16]), want, plen) {
                return true
            }
            return false
        }
        if plen == 0 { return true }
        return Evaluator.prefixMatch(addr, want, plen)
    }

    public enum AuditError: Error, Equatable {
        /// `-EINVAL`, with the byte offset of the offending instruction.
        case invalid(offset: Int, reason: String)
        /// `-EPERM`: `MARK_COND` without CAP_NET_ADMIN.
        case permission(offset: Int)
    }

    /// inet_diag_bc_audit: the checks the kernel makes before it accepts a program.
    public static func audit(_ bc: [UInt8], netAdmin: Bool = true) throws {
        guard bc.count >= 4 else { throw AuditError.invalid(offset: 0, reason: "shorter than one op") }
        var pc = 0
        var len = bc.count
        while len > 0 {
            guard len >= 4 else { throw AuditError.invalid(offset: pc, reason: "truncated op") }
            var minLen = 4
            let code = bc[pc], yesOff = Int(bc[pc + 1]), noOff = Int(LE.readU16(bc, pc + 2))
            switch BytecodeOp(rawValue: code) {
            case .sCond?, .dCond?:
                minLen += 8
                guard len >= minLen else { throw AuditError.invalid(offset: pc, reason: "hostcond truncated") }
                let addrLen: Int
                switch Int32(bc[pc + 4]) {
                case AF_UNSPEC: addrLen = 0
                case AF_INET: addrLen = 4
                case AF_INET6: addrLen = 16
                default: throw AuditError.invalid(offset: pc, reason: "bad hostcond family")
                }
                minLen += addrLen
                guard len >= minLen else { throw AuditError.invalid(offset: pc, reason: "address truncated") }
                guard Int(bc[pc + 5]) <= 8 * addrLen else { throw AuditError.invalid(offset: pc, reason: "prefix too long") }
            case .devCond?:
                minLen += 4
                guard len >= minLen else { throw AuditError.invalid(offset: pc, reason: "ifindex truncated") }
            case .sEQ?, .sGE?, .sLE?, .dEQ?, .dGE?, .dLE?:
                minLen += 4
                guard len >= minLen else { throw AuditError.invalid(offset: pc, reason: "port truncated") }
            case .markCond?:
                guard netAdmin else { throw AuditError.permission(offset: pc) }
                minLen += 8
                guard len >= minLen else { throw AuditError.invalid(offset: pc, reason: "markcond truncated") }
            case .cgroupCond?:
                minLen += 8
                guard len >= minLen else { throw AuditError.invalid(offset: pc, reason: "cgroup id truncated") }
            case .auto?, .jmp?, .nop?:
                break
            case nil:
                throw AuditError.invalid(offset: pc, reason: "unknown op \(code)")
            }
            if code != BytecodeOp.nop.rawValue {
                guard noOff >= minLen, noOff <= len + 4, noOff & 3 == 0 else {
                    throw AuditError.invalid(offset: pc, reason: "bad 'no' offset \(noOff)")
                }
                if noOff < len, !validTarget(bc, bc.count - (len - noOff)) {
                    throw AuditError.invalid(offset: pc, reason: "'no' lands inside an op")
                }
            }
            guard yesOff >= minLen, yesOff <= len + 4, yesOff & 3 == 0 else {
                throw AuditError.invalid(offset: pc, reason: "bad 'yes' offset \(yesOff)")
            }
            pc += yesOff
            len -= yesOff
        }
        guard len == 0 else { throw AuditError.invalid(offset: pc, reason: "program does not end on an op boundary") }
    }

    /// valid_cc: walking `yes` steps from the start reaches `target` exactly.
    private static func validTarget(_ bc: [UInt8], _ target: Int) -> Bool {
        var pc = 0
        while pc <= bc.count {
            if pc == target { return true }
            if pc > target || pc + 4 > bc.count { return false }
            let y = Int(bc[pc + 1])
            if y < 4 || y & 3 != 0 { return false }
            pc += y
        }
        return false
    }
}
