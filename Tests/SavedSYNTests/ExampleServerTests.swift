import Foundation
@testable import SavedSYN
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Examples/syn-example-server (SwiftNIO + SavedSYNHandler) run as a user would run it, in a test
/// namespace, with a policy; clients with three SYN shapes made by socket options and a sysctl.
@Suite(.serialized) struct ExampleServerTests {
    static func exampleServerBinary() -> String {
        URL(fileURLWithPath: sockctlBinary()).deletingLastPathComponent().appendingPathComponent("syn-example-server").path
    }

    /// Connects, sends nothing, reads what the server says until it closes (5 s at most).
    static func greeting(_ ns: TestNetns, port: UInt16, mss: Int32? = nil) throws -> String {
        let fd = try connectRetrying(ns, port: port, mss: mss)
        defer { close(fd) }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 512)
        while true {
            let n = read(fd, &buf, buf.count)
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    @Test func exampleServerGreetsTagsAndDenies() throws {
        let ns = try TestNetns("example")
        defer { ns.delete() }
        let policy = NSTemporaryDirectory() + uniqueName("policy") + ".yaml"
        defer { unlink(policy) }
        try """
        default: allow
        rules:
          - name: tag-linux
            match: { os: "Linux*" }
            action: tag
            tag: linux
          - name: small-mss
            match: { mss: "< 1000" }
            action: deny
          - name: no-timestamps
            match: { fingerprint: "%:2-1-1-4-1-3:%:%" }
            action: tag
            tag: no-ts
        """.write(toFile: policy, atomically: true, encoding: .utf8)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["ip", "netns", "exec", ns.name, Self.exampleServerBinary(), "7101", "--policy", policy]
        let out = Pipe()
        server.standardOutput = out
        server.standardError = out
        try server.run()
        // SIGKILL: the test process's blocked signals are inherited, so SIGTERM may not reach it.
        defer { if server.isRunning { kill(server.processIdentifier, SIGKILL) }; server.waitUntilExit() }

        // 1. This kernel's own SYN on loopback: matched by the built-in database, tagged, allowed.
        let linux = try Self.greeting(ns, port: 7101)
        #expect(linux.hasPrefix("os=Linux 4.x-6.x (loopback) signature=4:64+0:0:"), "\(linux)")
        #expect(linux.contains(":mss,sok,ts,nop,ws:df,id+:0 fingerprint="), "\(linux)")
        #expect(linux.contains(":2-4-8-1-3:"), "\(linux)")
        #expect(linux.hasSuffix(" policy=allow tags=linux\n"), "\(linux)")

        // 2. MSS clamped to 800 (TCP_MAXSEG before connect): denied, closed with no answer.
        let denied = try Self.greeting(ns, port: 7101, mss: 800)
        #expect(denied.isEmpty, "a denied client got \(denied)")

        // 3. Timestamps off in the namespace: Linux then sends mss,nop,nop,sok,nop,ws. Not in the
        //    built-in database (unknown OS), tagged by the MuonFP rule, allowed by default.
        try ns.exec("sysctl", "-q", "-w", "net.ipv4.tcp_timestamps=0")
        let noTS = try Self.greeting(ns, port: 7101)
        #expect(noTS.hasPrefix("os=unknown signature=4:64+0:0:"), "\(noTS)")
        #expect(noTS.contains(":mss,nop,nop,sok,nop,ws:df,id+:0 fingerprint="), "\(noTS)")
        #expect(noTS.contains(":2-1-1-4-1-3:"), "\(noTS)")
        #expect(noTS.hasSuffix(" policy=allow tags=no-ts\n"), "\(noTS)")

        kill(server.processIdentifier, SIGKILL)
        server.waitUntilExit()
        let log = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let lines = log.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("listening on ") == true, "\(log)")
        // One log line per client, in order; the denied one is logged with its decision and MSS.
        let clients = lines.filter { $0.hasPrefix("os=") }
        #expect(clients.count == 3, "\(log)")
        if clients.count == 3 {
            #expect(clients[0] + "\n" == linux)
            #expect(clients[1].hasPrefix("os=unknown signature=4:64+0:0:800:"), "\(clients[1])")
            #expect(clients[1].contains(" fingerprint=") && clients[1].contains(":800:"), "\(clients[1])")
            #expect(clients[1].hasSuffix(" policy=deny"), "\(clients[1])")
            #expect(clients[2] + "\n" == noTS)
        }
    }
}
