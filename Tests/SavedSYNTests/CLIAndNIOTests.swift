import Foundation
import NIOCore
import NIOPosix
@testable import SavedSYN
import SavedSYNNIO
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Connects (retrying while the server is not up yet) from inside `ns`.
func connectRetrying(_ ns: TestNetns, port: UInt16, mss: Int32? = nil) throws -> Int32 {
    let deadline = Date().addingTimeInterval(10)
    while true {
        do {
            return try ns.run { try connectTo(family: AF_INET, address: "127.0.0.1", port: port, mss: mss) }
        } catch {
            if Date() > deadline { throw error }
            usleep(50_000)
        }
    }
}

/// Starts `sockctl syn ARGS` inside `ns`.
func startSockctl(_ ns: TestNetns, _ args: [String]) throws -> (Process, Pipe, Pipe) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["ip", "netns", "exec", ns.name, sockctlBinary(), "syn"] + args
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    return (p, out, err)
}

func waitExit(_ p: Process, seconds: Double = 10) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while p.isRunning && Date() < deadline { usleep(20_000) }
    if p.isRunning { p.terminate(); return false }
    return true
}

@Suite(.serialized) struct CLIAndNIOTests {
    @Test func synCommandPrintsJSONPerClient() throws {
        let ns = try TestNetns("cli")
        defer { ns.delete() }
        let (p, out, err) = try startSockctl(ns, ["--listen", "127.0.0.1:7001", "--json", "--count", "2", "--db", "/etc/p0f/p0f.fp"])
        var ports: [Int] = []
        for _ in 0..<2 {
            let c = try connectRetrying(ns, port: 7001)
            ports.append(Int(localPort(c)))
            close(c)
        }
        #expect(waitExit(p), "sockctl syn did not exit after --count 2")
        #expect(p.terminationStatus == 0, "\(String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))")
        let lines = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 2)
        for (i, line) in lines.enumerated() {
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(Set(obj.keys) == ["src", "sport", "dst", "dport", "ttl", "signature", "fingerprint", "os"])
            #expect(obj["src"] as? String == "127.0.0.1" && obj["dst"] as? String == "127.0.0.1")
            #expect(obj["sport"] as? Int == ports[i] && obj["dport"] as? Int == 7001)
            #expect(obj["ttl"] as? Int == 64)
            #expect(obj["os"] as? String == "Linux 4.x-6.x (loopback)")
            let sig = try #require(obj["signature"] as? String)
            #expect(sig.hasPrefix("4:64+0:0:") && sig.hasSuffix(":mss,sok,ts,nop,ws:df,id+:0"))
            #expect((obj["fingerprint"] as? String)?.contains(":2-4-8-1-3:") == true)
        }
    }

    @Test func synCommandUsageAndConfigErrorsExit2() throws {
        let ns = try TestNetns("cli2")
        defer { ns.delete() }
        let (st, _, e) = try run(["ip", "netns", "exec", ns.name, sockctlBinary(), "syn", "--listen", "nonsense"])
        #expect(st == 2 && e.contains("--listen 'nonsense'"))
        let policy = NSTemporaryDirectory() + uniqueName("policy") + ".yaml"
        defer { unlink(policy) }
        try "rules:\n  - name: a\n    match: { ttl: 64 }\n    action: drop\n".write(toFile: policy, atomically: true, encoding: .utf8)
        let (st2, _, e2) = try run(["ip", "netns", "exec", ns.name, sockctlBinary(), "syn", "--listen", "127.0.0.1:7005", "--policy", policy])
        #expect(st2 == 2 && e2.contains("\(policy):4:13: unknown action 'drop'"))
        let (st3, _, e3) = try run(["ip", "netns", "exec", ns.name, sockctlBinary(), "syn", "--listen", "127.0.0.1:7005", "--db", "/nonexistent.fp"])
        #expect(st3 == 2 && e3.contains("/nonexistent.fp"))
    }

    @Test func proxyForwardsAllowedAndClosesDenied() throws {
        let ns = try TestNetns("proxy")
        defer { ns.delete() }
        // Upstream: an echo server for one connection.
        let (up, upPort) = try ns.run { try makeListener(family: AF_INET, address: "127.0.0.1", saveSYN: nil) }
        defer { close(up) }
        let echoDone = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            if let c = try? acceptWithin(up, seconds: 10) {
                var buf = [UInt8](repeating: 0, count: 100)
                let n = read(c, &buf, 100)
                if n > 0 { _ = write(c, buf, n) }
                close(c)
            }
            echoDone.signal()
        }
        let policy = NSTemporaryDirectory() + uniqueName("policy") + ".yaml"
        defer { unlink(policy) }
        try "rules:\n  - name: tiny-mss\n    match: { mss: \"< 1000\" }\n    action: deny\n".write(toFile: policy, atomically: true, encoding: .utf8)
        let (p, out, _) = try startSockctl(ns, ["--listen", "127.0.0.1:7002", "--proxy-to", "127.0.0.1:\(upPort)",
                                                 "--policy", policy, "--count", "2"])
        // Denied: MSS 900 in the SYN. The proxy closes without forwarding: EOF.
        let denied = try connectRetrying(ns, port: 7002, mss: 900)
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(denied, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var buf = [UInt8](repeating: 0, count: 16)
        #expect(read(denied, &buf, 16) <= 0)
        close(denied)
        // Allowed: bytes go to the upstream and back.
        let allowed = try connectRetrying(ns, port: 7002)
        setsockopt(allowed, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        #expect(write(allowed, "hello", 5) == 5)
        let n = read(allowed, &buf, 16)
        #expect(n == 5 && String(decoding: buf[0..<max(0, n)], as: UTF8.self) == "hello")
        close(allowed)
        echoDone.wait()
        #expect(waitExit(p))
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(text.contains("policy=deny(tiny-mss)"))
        #expect(text.contains("policy=allow"))
    }

    final class PromiseQueue: @unchecked Sendable {
        let lock = NSLock()
        var items: [EventLoopPromise<SavedSYNEvent>] = []
        func set(_ p: [EventLoopPromise<SavedSYNEvent>]) { lock.lock(); items = p; lock.unlock() }
        func next() -> EventLoopPromise<SavedSYNEvent> { lock.lock(); defer { lock.unlock() }; return items.removeFirst() }
    }

    /// Collects the SavedSYNEvent in a promise.
    final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let promise: EventLoopPromise<SavedSYNEvent>
        init(_ p: EventLoopPromise<SavedSYNEvent>) { promise = p }
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let e = event as? SavedSYNEvent { promise.succeed(e) }
            context.fireUserInboundEventTriggered(event)
        }
    }

    @Test func nioHandlerFiresFingerprintAndAppliesPolicy() throws {
        let ns = try TestNetns("nio")
        defer { ns.delete() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let policy = try SYNPolicy(yaml: "rules:\n  - name: small\n    match: { mss: \"< 1000\" }\n    action: deny\n")
        let (lfd, port) = try ns.run { try makeListener(family: AF_INET, address: "127.0.0.1") }
        _ = fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK)
        let events = PromiseQueue()
        let loop = group.next()
        let p1 = loop.makePromise(of: SavedSYNEvent.self)
        let p2 = loop.makePromise(of: SavedSYNEvent.self)
        events.set([p1, p2])
        // Never hang the suite: fail the promises after 10 s.
        for p in [p1, p2] {
            loop.scheduleTask(in: .seconds(10)) { p.fail(TestFailure("no SavedSYNEvent within 10 s")) }
        }
        let server = try ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                let p = events.next()
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        SavedSYNHandler(database: BuiltinSignatures.database, policy: policy))
                    try channel.pipeline.syncOperations.addHandler(Collector(p))
                }
            }
            .withBoundSocket(lfd).wait()
        defer { try? server.close().wait() }

        let c1 = try ns.run { try connectTo(family: AF_INET, address: "127.0.0.1", port: port) }
        defer { close(c1) }
        let e1 = try p1.futureResult.wait()
        guard case let .fingerprint(fp, decision) = e1 else { Issue.record("event: \(e1)"); return }
        #expect(fp.os == "Linux 4.x-6.x (loopback)")
        #expect(fp.packet.tcp.sourcePort == localPort(c1))
        #expect(decision?.action == .allow)

        let c2 = try ns.run { try connectTo(family: AF_INET, address: "127.0.0.1", port: port, mss: 800) }
        defer { close(c2) }
        let e2 = try p2.futureResult.wait()
        guard case let .fingerprint(fp2, decision2) = e2 else { Issue.record("event: \(e2)"); return }
        #expect(fp2.packet.tcp.mss == 800)
        #expect(decision2?.action == .deny && decision2?.rule == "small")
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(c2, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var buf = [UInt8](repeating: 0, count: 4)
        #expect(read(c2, &buf, 4) == 0, "a denied channel is closed")
    }
}
