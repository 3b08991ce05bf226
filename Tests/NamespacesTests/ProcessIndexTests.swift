import Foundation
import TestSupport
import Testing
@testable import Namespaces

@Suite("ProcessIndex") struct ProcessIndexTests {
    /// A Python child inside a test namespace that names itself, opens a socketpair and a TCP
    /// listener, dups one end, and prints: pid fdA fdA2 fdB fdL inodeA inodeB inodeL.
    static let holder = """
    import os, socket, sys
    open('/proc/self/comm', 'w').write('sockctl-t-idx')
    a, b = socket.socketpair()
    l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)
    a2 = os.dup(a.fileno())
    ino = lambda f: os.fstat(f).st_ino
    print(os.getpid(), a.fileno(), a2, b.fileno(), l.fileno(), ino(a.fileno()), ino(b.fileno()), ino(l.fileno()), flush=True)
    sys.stdin.read()
    """

    @Test("finds the sockets a child holds: pid, comm, every fd", arguments: [1, 2])
    func findsChildSockets(threads: Int) throws {
        let ns = try TestNamespace()
        defer { ns.close() }
        let child = try holdChild(["ip", "netns", "exec", ns.name, "python3", "-c", Self.holder])
        defer { child.release() }
        let fields = (child.readLine() ?? "").split(separator: " ").compactMap { UInt64($0) }
        try #require(fields.count == 8, "holder printed \(fields)")
        let pid = Int32(fields[0]), fdA = Int32(fields[1]), fdA2 = Int32(fields[2]), fdB = Int32(fields[3]), fdL = Int32(fields[4])
        let (inoA, inoB, inoL) = (fields[5], fields[6], fields[7])
        #expect(pid == child.pid, "ip netns exec and python exec in place")

        let all = try ProcessIndex.build(threads: threads)
        #expect(all.owners(of: inoA) == [SocketOwner(pid: pid, comm: "sockctl-t-idx", fd: min(fdA, fdA2)),
                                         SocketOwner(pid: pid, comm: "sockctl-t-idx", fd: max(fdA, fdA2))])
        #expect(all.owners(of: inoB) == [SocketOwner(pid: pid, comm: "sockctl-t-idx", fd: fdB)])
        #expect(all.owners(of: inoL) == [SocketOwner(pid: pid, comm: "sockctl-t-idx", fd: fdL)])
        #expect(all.processesScanned > 1)

        let some = try ProcessIndex.build(wanted: [inoB, 1], threads: threads)
        #expect(some.owners(of: inoB) == [SocketOwner(pid: pid, comm: "sockctl-t-idx", fd: fdB)])
        #expect(some.owners(of: inoA).isEmpty, "inodes not asked for are not stored")
        #expect(some.socketCount == 1)

        let pending = try ProcessIndex.start(wanted: [inoA, inoL], threads: threads)
        let started = try pending.wait()
        #expect(started.owners(of: inoL) == [SocketOwner(pid: pid, comm: "sockctl-t-idx", fd: fdL)])
        #expect(started.owners(of: inoA).count == 2)
        #expect(try pending.wait().entryCount == started.entryCount, "wait() may be called again")
    }

    @Test("an inode nobody holds has no owners")
    func unknownInode() throws {
        let index = try ProcessIndex.build()
        #expect(index.owners(of: UInt64.max).isEmpty)
    }
}
