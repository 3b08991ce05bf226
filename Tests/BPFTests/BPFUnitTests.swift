@testable import BPF
import Foundation
import TestSupport
import Testing
import CSockDestroy

@Suite("BPF backend without the kernel")
struct BPFUnitTests {
    @Test func prefixes() throws {
        let p = try #require(BPFPrefix("10.1.2.3/16"))
        #expect(p.isIPv4 && p.length == 112)
        #expect(p.bytes == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 0, 0])
        #expect(p.description == "10.1.0.0/16")
        let q = try #require(BPFPrefix("fd00:1::5/32"))
        #expect(!q.isIPv4 && q.length == 32 && q.bytes.prefix(4) == [0xfd, 0, 0, 1] && q.bytes.dropFirst(4).allSatisfy { $0 == 0 })
        #expect(BPFPrefix("10.0.0.0/33") == nil)
        #expect(BPFPrefix("nonsense") == nil)
        #expect(BPFPrefix("::1/129") == nil)
        #expect(BPFPrefix("127.0.0.1")?.length == 128)
    }

    @Test func clauseEncodingMatchesKernelLayout() throws {
        let c = BPFDestroySpec.encode(.init(family: .ipv4, destination: BPFPrefix("192.168.0.0/16"), destinationPorts: 80...443, states: [1, 10]))
        #expect(c.flags == 1)
        #expect(c.states == (1 << 1 | 1 << 10))
        #expect(c.dst.2 == 0xffff_0000 && c.dst.3 == 0x0000_a8c0)          // ::ffff:192.168 as little-endian words
        #expect(c.dst_mask.2 == 0xffff_ffff && c.dst_mask.3 == 0x0000_ffff)
        #expect(c.src_mask.0 == 0 && c.src_mask.3 == 0)
        #expect((c.dport_lo, c.dport_hi, c.sport_lo, c.sport_hi) == (80, 443, 0, 65535))
        #expect(MemoryLayout<sockctl_record>.size == 64)
    }

    @Test func specValidation() {
        #expect(throws: BPFError.self) { try BPFDestroySpec().validate() }
        #expect(throws: BPFError.self) { try BPFDestroySpec(clauses: Array(repeating: .init(), count: 33)).validate() }
        #expect(throws: BPFError.self) { try BPFDestroySpec(clauses: [.init(family: .ipv6, destination: BPFPrefix("10.0.0.0/8"))]).validate() }
        #expect(throws: Never.self) { try BPFDestroySpec.all().validate() }
        #expect(throws: Never.self) { try BPFDestroySpec(cookies: [1]).validate() }
    }

    @Test func errorsAreActionable() {
        #expect(BPFError.libbpfMissing(detail: "x").description.hasPrefix("libbpf.so.1 not found: install libbpf1"))
        #expect(BPFError.kernelLacksSockDestroy(detail: "y").description.hasPrefix("kernel lacks bpf_sock_destroy (needs Linux 6.5+ with BTF)"))
        #expect(BPFError.libbpfMissing(detail: "x").isUnsupported)
        #expect(throws: BPFError.self) { _ = try LibBPF.open(path: "libbpf-does-not-exist.so.9") }
    }

    /// LibBPF is a struct of function pointers: a fake whose bpf_object__open_mem fails shows
    /// that init reports the failing libbpf call with its errno, and never calls load.
    @Test func loaderReportsFailingLibbpfCall() throws {
        var lib = try LibBPF.shared.get()
        lib.objectOpenMem = { _, _, _ in errno = EINVAL; return nil }
        lib.objectLoad = { _ in fatalError("load must not run after a failed open") }
        #expect(throws: BPFError.kernel(operation: "bpf_object__open_mem", errno: EINVAL, detail: "")) {
            _ = try BPFSocketDestroyer(library: lib)
        }
    }

    @Test func kernelBTFReader() throws {
        let blob = try [UInt8](Data(contentsOf: URL(fileURLWithPath: KernelBTF.vmlinuxPath)))
        #expect(try KernelBTF.hasFunction(named: "bpf_sock_destroy", in: blob))
        #expect(try KernelBTF.hasFunction(named: "tcp_abort", in: blob))
        #expect(try !KernelBTF.hasFunction(named: "sockctl_no_such_kfunc", in: blob))
        #expect(try !KernelBTF.hasFunction(named: "bpf_sock_destro", in: blob))
        #expect(throws: BPFError.self) { _ = try KernelBTF.hasFunction(named: "x", in: [1, 2, 3]) }
    }

    /// Sources/BPF/Generated/SockDestroyObject.swift must be what scripts/gen-bpf makes from the
    /// current C sources: same source hash, and the same object when recompiled.
    @Test func generatedObjectIsFresh() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let c = try Data(contentsOf: root.appendingPathComponent("Sources/BPF/bpf/sock_destroy.bpf.c"))
        let h = try Data(contentsOf: root.appendingPathComponent("Sources/BPF/bpf/sock_destroy.h"))
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("sockctl-bpf-\(getpid())")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        try (c + h).write(to: tmp.appendingPathComponent("src"))
        let hash = try sh("/usr/bin/sha256sum", tmp.appendingPathComponent("src").path).prefix(64)
        #expect(String(hash) == SockDestroyObject.sourceSHA256, "BPF sources changed: run scripts/gen-bpf")

        let obj = tmp.appendingPathComponent("obj.o").path
        try sh(root.appendingPathComponent("scripts/gen-bpf").path, "--print-object", obj)
        let rebuilt = try [UInt8](Data(contentsOf: URL(fileURLWithPath: obj)))
        #expect(rebuilt == SockDestroyObject.bytes, "embedded BPF object differs from a fresh build: run scripts/gen-bpf")
    }
}
