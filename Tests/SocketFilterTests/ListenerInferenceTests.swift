import Glibc
import SockDiag
@testable import SocketFilter
import Testing

/// `mayMatchListeners`: a filter that no listening socket can satisfy lets a TCP dump leave LISTEN
/// out (the kernel then skips the listening hash). Wrong answers would hide listeners from list and
/// kill, so each case is also checked against the evaluator on a listener-shaped socket.
@Suite struct ListenerInferenceTests {
    static let v4 = UInt8(AF_INET), v6 = UInt8(AF_INET6)

    @Test(arguments: [
        // (filter, may match an IPv4 listener, may match an IPv6 listener)
        ("", true, true),
        ("dst 10.213.0.0/16", false, false),
        ("dst 10.213.0.0/16 and dport = :2001", false, false),
        ("dport = :443", false, false),
        ("dport != :443", true, true),
        ("dport < :1", true, true),
        ("dst 0.0.0.0/0", true, false),           // an IPv4 prefix never matches `::`
        ("dst ::/0", false, true),
        ("dst *", true, true),
        ("dst *:80", false, false),
        ("sport = :80", true, true),              // decided by the socket
        ("not dst 10.0.0.0/8", true, true),
        ("dst 10.0.0.0/8 or sport = :22", true, true),
        ("dst 10.0.0.0/8 or dport = :22", false, false),
        ("not (dst 10.0.0.0/8 or sport = :22)", true, true),
        ("src 10.0.0.1 and dst 10.0.0.2", false, false),
        ("uid = 1000 and dport = :80", false, false),
        ("dev lo", true, true),
    ])
    func inference(filter: String, v4: Bool, v6: Bool) throws {
        let f = try SocketFilter.parse(filter)
        #expect(f.mayMatchListeners(family: Self.v4) == v4, "IPv4: \(filter)")
        #expect(f.mayMatchListeners(family: Self.v6) == v6, "IPv6: \(filter)")
    }

    /// "Cannot match" must be sound: a listener on any local address and port, with the fields the
    /// inference treats as unknown set both ways, never matches when the answer is false.
    @Test func neverWrongOnListenerShapedSockets() throws {
        let filters = ["dst 10.213.0.0/16 and dport = :2001", "dport = :443", "dst ::/0", "dst 0.0.0.0/0",
                       "dst 10.0.0.0/8 or dport = :22", "src 10.0.0.1 and dst 10.0.0.2", "not dport = :0"]
        for text in filters {
            let f = try SocketFilter.parse(text)
            for family in [Self.v4, Self.v6] where !f.mayMatchListeners(family: family) {
                for (src, port) in [(family == Self.v4 ? "10.0.0.1" : "::1", UInt16(22)), (family == Self.v4 ? "0.0.0.0" : "::", UInt16(2001))] {
                    var s = Socket(family: family, kind: .tcp, state: .listen)
                    s.source = InetAddress(src)
                    s.destination = InetAddress(family == Self.v4 ? "0.0.0.0" : "::")
                    s.sourcePort = port
                    s.destinationPort = 0
                    #expect(!f.matches(s), "\(text) matched a listener \(src):\(port)")
                }
            }
        }
    }
}
