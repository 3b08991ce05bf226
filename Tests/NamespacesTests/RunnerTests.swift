import CLinuxUAPI
import Foundation
import TestSupport
import Testing
@testable import Namespaces

/// The namespace inode of the calling thread, from readlink /proc/thread-self/ns/net ("net:[N]").
func threadNamespaceInode() -> UInt64 {
    guard let link = readLink("/proc/thread-self/ns/net"), link.hasPrefix("net:["), link.hasSuffix("]") else { return 0 }
    return UInt64(link.dropFirst(5).dropLast()) ?? 0
}

/// A TCP listener on 127.0.0.1 with a kernel-chosen port: (fd, port).
func listenLoopback() throws -> (Int32, UInt16) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw NamespaceError(.system, "socket: \(errno)") }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
            bind(fd, sa, len) == 0 && listen(fd, 16) == 0 && getsockname(fd, sa, &len) == 0
        }
    }
    guard ok else { close(fd); throw NamespaceError(.system, "bind/listen: \(errno)") }
    return (fd, UInt16(bigEndian: addr.sin_port))
}

@Suite("NamespaceRunner") struct RunnerTests {
    @Test("the body runs inside the namespace, on a thread of its own that is gone afterwards")
    func runsInsideOnDedicatedThread() throws {
        let ns = try TestNamespace()
        defer { ns.close() }
        let target = try NetworkNamespace.resolve(ns.name)
        let callerTID = sockctl_gettid()
        let callerNS = threadNamespaceInode()

        let (inode, tid, current) = try NamespaceRunner.run(in: target) {
            (threadNamespaceInode(), sockctl_gettid(), try NetworkNamespace.current())
        }

        #expect(inode == ns.inode)
        #expect(current.inode == ns.inode)
        #expect(current.label == ns.name, "current() is labelled by its /run/netns name")
        #expect(try NetworkNamespace.current().inode == callerNS)
        #expect(tid != callerTID)
        #expect(threadNamespaceInode() == callerNS, "the caller's thread did not move")
        #expect(access("/proc/self/task/\(tid)", F_OK) != 0, "the namespaced thread exited")
    }

    @Test("a listener opened in the body lives in the namespace (ss inside it sees it)")
    func listenerBelongsToNamespace() throws {
        let ns = try TestNamespace()
        defer { ns.close() }
        let (fd, port) = try NamespaceRunner.run(in: try NetworkNamespace.resolve(ns.name)) { try listenLoopback() }
        defer { close(fd) }
        let seen = sh("ip", "netns", "exec", ns.name, "ss", "-tlnH")
        #expect(seen.contains("127.0.0.1:\(port)"), "ss -tlnH in \(ns.name) printed: \(seen)")
    }

    @Test("errors thrown by the body come back to the caller")
    func bodyErrors() throws {
        let ns = try TestNamespace()
        defer { ns.close() }
        struct Boom: Error, Equatable {}
        #expect(throws: Boom()) {
            try NamespaceRunner.run(in: try NetworkNamespace.resolve(ns.name)) { throw Boom() }
        }
    }

    @Test("the async form suspends the task and runs inside the namespace")
    func asyncRun() async throws {
        let ns = try TestNamespace()
        defer { ns.close() }
        let inode = try await NamespaceRunner.run(in: try NetworkNamespace.resolve(ns.name)) { threadNamespaceInode() }
        #expect(inode == ns.inode)
    }

    @Test("stream: every namespace's items, in order, each produced inside its namespace; a failure stays with its namespace",
          arguments: [(1, 1), (2, 8), (4, 1)])
    func streamOrderAndFailures(parallelism: Int, bufferLimit: Int) throws {
        let spaces = try (0..<4).map { _ in try TestNamespace() }
        defer { spaces.forEach { $0.close() } }
        var targets = try spaces.map { try NetworkNamespace.resolve($0.name) }
        // The third one is deleted before the run: it must fail alone, as vanished.
        spaces[2].close()
        let perNamespace = 40

        var events: [(UInt64, String)] = []
        let gauge = POSIXMutex()
        nonisolated(unsafe) var running = 0, maxRunning = 0, tids: Set<Int32> = []
        try NamespaceRunner.stream(targets, parallelism: parallelism, bufferLimit: bufferLimit, produce: { ns, emit in
            gauge.lock(); running += 1; maxRunning = max(maxRunning, running); tids.insert(sockctl_gettid()); gauge.unlock()
            defer { gauge.lock(); running -= 1; gauge.unlock() }
            for i in 0..<perNamespace {
                if i % 10 == 0 { usleep(UInt32.random(in: 0..<2000)) }
                try emit((threadNamespaceInode(), i))
            }
        }, consume: { ns, event in
            switch event {
            case .item(let (inode, i)):
                #expect(inode == ns.inode, "item produced outside its namespace")
                events.append((ns.inode, "item \(i)"))
            case .finished: events.append((ns.inode, "finished"))
            case .failed(let e): events.append((ns.inode, "failed \((e as? NamespaceError)?.kind.rawValue ?? "\(e)")"))
            }
        })

        var expected: [(UInt64, String)] = []
        for (k, t) in targets.enumerated() {
            if k == 2 { expected.append((t.inode, "failed vanished")); continue }
            expected += (0..<perNamespace).map { (t.inode, "item \($0)") }
            expected.append((t.inode, "finished"))
        }
        #expect(events.map(\.0) == expected.map(\.0))
        #expect(events.map(\.1) == expected.map(\.1))
        #expect(maxRunning <= parallelism, "at most `parallelism` namespaces at once")
        #expect(tids.count <= min(parallelism, 3), "at most `parallelism` worker threads, reused across namespaces")
        targets.removeAll()
    }

    @Test("stream: when the consumer throws, producers are cancelled and the error comes back")
    func streamCancel() throws {
        let spaces = try (0..<3).map { _ in try TestNamespace() }
        defer { spaces.forEach { $0.close() } }
        let targets = try spaces.map { try NetworkNamespace.resolve($0.name) }
        struct Stop: Error, Equatable {}
        let sawCancel = POSIXMutex()
        nonisolated(unsafe) var cancelled = 0, started = 0
        #expect(throws: Stop()) {
            try NamespaceRunner.stream(targets, parallelism: 3, bufferLimit: 4, produce: { _, emit in
                sawCancel.lock(); started += 1; sawCancel.unlock()
                do {
                    for i in 0..<10_000 { try emit(i) }
                } catch let e as NamespaceError where e.kind == .cancelled {
                    sawCancel.lock(); cancelled += 1; sawCancel.unlock()
                    throw e
                }
            }, consume: { _, event in
                if case .item(5) = event { throw Stop() }
            })
        }
        sawCancel.lock()
        // A namespace not yet claimed when the consumer stopped is never started.
        #expect(started >= 1 && cancelled == started, "every producer that started saw emit throw .cancelled")
        sawCancel.unlock()
    }

    @Test("map returns one result per namespace in input order")
    func mapOrder() throws {
        let spaces = try (0..<3).map { _ in try TestNamespace() }
        defer { spaces.forEach { $0.close() } }
        let targets = try spaces.map { try NetworkNamespace.resolve($0.name) }
        let results = NamespaceRunner.map(targets, parallelism: 2) { _ in threadNamespaceInode() }
        #expect(try results.map { try $0.get() } == spaces.map(\.inode))
    }

    @Test("interface names and indexes are those of the namespace the thread is in")
    func interfacesInsideNamespace() throws {
        let ns = try TestNamespace()
        defer { ns.close() }
        let dev = "sct\(UInt32.random(in: 0..<100_000))"
        let peer = dev + "p"
        sh("ip", "-n", ns.name, "link", "add", dev, "type", "veth", "peer", "name", peer)
        let peerIndex = sh("ip", "-n", ns.name, "-o", "link", "show", peer).split(separator: ":").first.map(String.init) ?? ""
        let ipIndex = sh("ip", "-n", ns.name, "-o", "link", "show", dev).split(separator: ":").first.map(String.init) ?? ""

        let (names, index, back, missing) = try NamespaceRunner.run(in: try NetworkNamespace.resolve(ns.name)) {
            (try Interfaces.names(), Interfaces.index(of: dev), Interfaces.name(of: 1), Interfaces.index(of: "eth0"))
        }
        #expect(names == [1: "lo", UInt32(ipIndex) ?? 0: dev, UInt32(peerIndex) ?? 0: peer])
        #expect(index == UInt32(ipIndex))
        #expect(back == "lo")
        #expect(missing == nil)
    }
}
