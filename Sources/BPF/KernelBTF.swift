import Glibc

/// Minimal reader of the kernel's BTF blob (/sys/kernel/btf/vmlinux, format of
/// include/uapi/linux/btf.h: `struct btf_header`, then `struct btf_type` records, then strings),
/// enough to ask whether a function (a kfunc such as bpf_sock_destroy) is known to the kernel.
enum KernelBTF {
    static let vmlinuxPath = "/sys/kernel/btf/vmlinux"

    /// True when `blob` declares a BTF_KIND_FUNC named `name`.
    static func hasFunction(named name: String, in blob: [UInt8]) throws(BPFError) -> Bool {
        func u32(_ at: Int) -> UInt32? {
            guard at >= 0, at + 4 <= blob.count else { return nil }
            return UInt32(blob[at]) | UInt32(blob[at + 1]) << 8 | UInt32(blob[at + 2]) << 16 | UInt32(blob[at + 3]) << 24
        }
        guard blob.count >= 24, blob[0] == 0x9f, blob[1] == 0xeb,
              let hdrLen = u32(4), let typeOff = u32(8), let typeLen = u32(12),
              let strOff = u32(16), let strLen = u32(20)
        else { throw .kernelLacksSockDestroy(detail: "\(vmlinuxPath) is not little-endian BTF") }
        let types = Int(hdrLen) + Int(typeOff), typesEnd = types + Int(typeLen)
        let strings = Int(hdrLen) + Int(strOff), stringsEnd = strings + Int(strLen)
        guard typesEnd <= blob.count, stringsEnd <= blob.count else {
            throw .kernelLacksSockDestroy(detail: "\(vmlinuxPath) is truncated")
        }
        let wanted = Array(name.utf8)
        func nameIs(_ off: UInt32) -> Bool {
            let start = strings + Int(off)
            guard start + wanted.count < stringsEnd else { return false }
            for i in 0..<wanted.count where blob[start + i] != wanted[i] { return false }
            return blob[start + wanted.count] == 0
        }
        var at = types
        while at + 12 <= typesEnd {
            guard let nameOff = u32(at), let info = u32(at + 4) else { break }
            let kind = (info >> 24) & 0x1f, vlen = Int(info & 0xffff)
            if kind == 12 /* BTF_KIND_FUNC */ && nameIs(nameOff) { return true }
            at += 12
            switch kind {
            case 1, 14, 17: at += 4                 // INT, VAR, DECL_TAG
            case 3: at += 12                        // ARRAY
            case 4, 5, 15, 19: at += 12 * vlen      // STRUCT, UNION, DATASEC, ENUM64
            case 6, 13: at += 8 * vlen              // ENUM, FUNC_PROTO
            case 2, 7, 8, 9, 10, 11, 12, 16, 18: break
            default:
                throw .kernelLacksSockDestroy(detail: "unknown BTF kind \(kind) in \(vmlinuxPath)")
            }
        }
        return false
    }

    /// Reads /sys/kernel/btf/vmlinux and checks for `bpf_sock_destroy`.
    static func checkSockDestroy(path: String = vmlinuxPath) throws(BPFError) {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw .kernelLacksSockDestroy(detail: "cannot open \(path): \(String(cString: strerror(errno))) (kernel built without CONFIG_DEBUG_INFO_BTF?)")
        }
        defer { close(fd) }
        var blob: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            blob.append(contentsOf: chunk[0..<n])
        }
        guard try hasFunction(named: "bpf_sock_destroy", in: blob) else {
            throw .kernelLacksSockDestroy(detail: "no bpf_sock_destroy function in \(path)")
        }
    }
}
