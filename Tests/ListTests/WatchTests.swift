import Foundation
import TestSupport
import Testing

/// `sockctl watch` reports sockets of its namespace as they close, filtered, and nothing from elsewhere.
@Suite struct WatchTests {
    @Test func reportsClosedSocketsOfItsNamespace() throws {
        let ns = try TestNamespace("watch")
        let other = try TestNamespace("watch-other")
        let out = Pipe()
        let watch = Process()
        watch.executableURL = URL(fileURLWithPath: sockctlBinary)
        watch.arguments = ["watch", "--netns", ns.name, "--json", "-tu", "--count", "3", "dport = :7301 or sport = :7301 or dport = :7302"]
        watch.standardOutput = out
        try watch.run()
        defer { if watch.isRunning { watch.terminate() }; watch.waitUntilExit() }
        Thread.sleep(forTimeInterval: 0.5)
        let traffic = """
        import socket
        l=socket.socket(); l.bind(('127.0.0.1',7301)); l.listen()
        c=socket.create_connection(('127.0.0.1',7301)); a,_=l.accept(); a.close(); c.close(); l.close()
        u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.connect(('127.0.0.1',7302)); u.close()
        x=socket.socket(); x.bind(('127.0.0.1',7399)); x.close()
        """
        // The same traffic in another namespace must not show up.
        other.exec(["python3", "-c", traffic])
        ns.exec(["python3", "-c", traffic])
        let deadline = Date().addingTimeInterval(10)
        while watch.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(!watch.isRunning, "watch did not report 3 sockets")
        let lines = try jsonLines(String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
        #expect(lines.count == 3)
        #expect(lines.allSatisfy { $0["netns"] as? String == ns.name })
        let tcp = lines.filter { $0["protocol"] as? String == "tcp" }
        #expect(tcp.count >= 2, "the two ends of the TCP connection come first: \(lines)")
        #expect(lines.allSatisfy { ($0["sport"] as? Int == 7301) || ($0["dport"] as? Int == 7301) || ($0["dport"] as? Int == 7302) })
    }
}
