import CLinuxUAPI

/// Op codes of `enum { INET_DIAG_BC_NOP, ... }` in include/uapi/linux/inet_diag.h.
public enum BytecodeOp: UInt8, Sendable {
    case nop = 0, jmp = 1, sGE = 2, sLE = 3, dGE = 4, dLE = 5, auto = 6, sCond = 7, dCond = 8
    case devCond = 9, markCond = 10, sEQ = 11, dEQ = 12, cgroupCond = 13
}

/// Emits `struct inet_diag_bc_op` programs. Every instruction falls through (`yes` = its own
/// length) on success and jumps to a label (`no`) on failure; labels are resolved in a second pass.
/// The kernel accepts a program that runs off its end exactly and rejects one that jumps to end + 4,
/// the `reject` label.
struct Assembler {
    struct Label: Hashable { let id: Int }
    private struct Instr {
        var code: BytecodeOp
        var payload: [UInt8]
        var onFalse: Label
    }
    private enum Item { case instr(Instr), mark(Label) }
    private var items: [Item] = []
    private var nextLabel = 1
    let reject = Label(id: 0)

    mutating func newLabel() -> Label {
        defer { nextLabel += 1 }
        return Label(id: nextLabel)
    }

    mutating func emit(_ code: BytecodeOp, _ payload: [UInt8] = [], onFalse: Label) {
        items.append(.instr(Instr(code: code, payload: payload, onFalse: onFalse)))
    }

    /// Unconditional jump (`INET_DIAG_BC_JMP` always takes `no`).
    mutating func jump(to l: Label) { emit(.jmp, onFalse: l) }

    mutating func place(_ l: Label) { items.append(.mark(l)) }

    struct TooLong: Error {}

    /// Pass 1 lays out offsets and binds labels; pass 2 writes `yes`/`no` as relative offsets.
    func assemble() throws -> [UInt8] {
        var offsets: [Label: Int] = [:]
        var pc = 0
        for item in items {
            switch item {
            case .mark(let l): offsets[l] = pc
            case .instr(let i): pc += 4 + i.payload.count
            }
        }
        offsets[reject] = pc + 4
        var out: [UInt8] = []
        out.reserveCapacity(pc)
        for item in items {
            guard case .instr(let i) = item else { continue }
            let here = out.count
            let len = 4 + i.payload.count
            let no = offsets[i.onFalse]! - here
            guard len <= 255, no > 0, no <= 0xFFFF else { throw TooLong() }
            out.append(i.code.rawValue)
            out.append(UInt8(len))
            out.append(UInt8(no & 0xFF))
            out.append(UInt8(no >> 8))
            out.append(contentsOf: i.payload)
        }
        return out
    }
}

/// Little-endian (host order on Linux targets we run on) encoders for payloads.
enum LE {
    static func u16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
    static func u32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    static func u64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    static func readU16(_ b: [UInt8], _ o: Int) -> UInt16 { UInt16(b[o]) | UInt16(b[o + 1]) << 8 }
    static func readU32(_ b: [UInt8], _ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[o + $1]) << (8 * $1) } }
    static func readU64(_ b: [UInt8], _ o: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[o + $1]) << (8 * $1) } }
}
