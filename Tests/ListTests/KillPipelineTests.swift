import Foundation
import TestSupport
import Testing

/// Destroys issued while the dump is still being read must not make the dump skip sockets: many
/// TCP connections (many dump chunks) and many connected UDP sockets sharing one local port (one
/// UDP hash bucket longer than a dump chunk, where destroyed sockets shift the resume position).
@Suite struct KillPipelineTests {
    static let fixture = """
    import resource, socket, sys
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 10000), hard))
    N = int(sys.argv[1])
    keep = []
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(('127.0.0.1', 7301)); l.listen(4096)
    for i in range(N):
        c = socket.create_connection(('127.0.0.1', 7301)); a, _ = l.accept(); keep += [c, a]
    for i in range(N):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        u.bind(('127.0.0.1', 7302)); u.connect(('127.0.0.1', 20000 + i)); keep.append(u)
    print('READY', flush=True); sys.stdin.read()
    """

    @Test(arguments: ["netlink", "bpf"]) func manySocketsNoneSkipped(backend: String) throws {
        let n = 1500
        let ns = try TestNamespace("pipe")
        let holder = try Holder(["ip", "netns", "exec", ns.name, "python3", "-c", Self.fixture, String(n)])
        defer { _ = holder }
        let r = sh([sockctlBinary, "kill", "--netns", ns.name, "--backend", backend, "--json", "-tu", "dport = :7301 or sport = :7302"])
        #expect(r.status == 0)
        let lines = try jsonLines(r.out)
        #expect(lines.count == 2 * n)
        #expect(lines.allSatisfy { $0["outcome"] as? String == "destroyed" })
        #expect(Set(lines.compactMap { $0["cookie"] as? Int }).count == 2 * n)
        // Nothing of it left: no TCP client of 7301, no connected UDP socket on 7302.
        let tcpLeft = ns.exec(["ss", "-tnH", "state", "established", "dport = :7301"]).stdout.split(separator: "\n").count
        let udpLeft = ns.exec(["ss", "-unH", "sport = :7302"]).stdout.split(separator: "\n").count
        #expect(tcpLeft == 0 && udpLeft == 0, "left: \(tcpLeft) tcp, \(udpLeft) udp")
        // The accepted ends were not targets: they saw the RST, so they are gone from ESTAB too,
        // but the listener still accepts.
        #expect(ns.exec(["ss", "-tlnH", "sport = :7301"]).stdout.split(separator: "\n").count == 1)
    }
}
