import Glibc
import SockDiag
@testable import SocketFilter
import Testing

/// `requiredPort`: a port every matching socket has, which a TCP dump request carries so that the
/// kernel skips other sockets before it runs the bytecode. A wrong answer would hide sockets from
/// list and kill, so each case is also checked against the evaluator: sockets on other ports never
/// match.
@Suite struct RequiredPortTests {
    @Test(arguments: [
        // (filter, required local port, required remote port)
        ("", nil, nil),
        ("sport = :443", 443, nil),
        ("sport == 443", 443, nil),
        ("dport eq :2001", nil, 2001),
        ("dst 10.213.0.0/16 and dport = :2001", nil, 2001),
        ("sport = :80 and dport = :5000", 80, 5000),
        ("dport != :443", nil, nil),
        ("dport >= :443", nil, nil),
        ("dport = :0", nil, nil),                     // 0 means "any" in the request
        ("not dport = :443", nil, nil),
        ("sport = :80 or sport = :443", nil, nil),
        ("sport = :80 or sport = :80", 80, nil),
        ("sport = :80 or dport = :80", nil, nil),
        ("state established (sport = :80 or src *:80)", 80, nil),
        ("src 127.0.0.1:8080", 8080, nil),
        ("dst [::1]:22", nil, 22),
        ("src :443", 443, nil),
        ("dst 10.0.0.0/8", nil, nil),
        ("uid 1000 and sport = :22", 22, nil),
        ("sport = :80 and sport = :443", 80, nil),    // matches nothing; the bytecode still decides
    ] as [(String, Int?, Int?)])
    func required(filter: String, source: Int?, destination: Int?) throws {
        let f = try SocketFilter.parse(filter)
        #expect(f.requiredPort(.source).map(Int.init) == source, "sport: \(filter)")
        #expect(f.requiredPort(.destination).map(Int.init) == destination, "dport: \(filter)")
    }

    /// Soundness: for a filter that names a required port, no socket on another port matches.
    @Test(arguments: ["sport = :443", "dst 10.213.0.0/16 and dport = :2001", "(sport = :80 or src *:80) and uid 0",
                      "src 127.0.0.1:8080", "dst [::1]:22", "sport = :80 or sport = :80"])
    func sound(filter: String) throws {
        let f = try SocketFilter.parse(filter)
        for family in [UInt8(AF_INET), UInt8(AF_INET6)] {
            for local: UInt16 in [22, 80, 443, 2001, 8080, 40000] {
                for remote: UInt16 in [22, 80, 443, 2001, 8080, 40000] {
                    var s = Socket(family: family, kind: .tcp, state: .established)
                    s.source = family == UInt8(AF_INET) ? InetAddress("127.0.0.1")! : InetAddress("::1")!
                    s.destination = family == UInt8(AF_INET) ? InetAddress("10.213.0.1")! : InetAddress("::1")!
                    s.sourcePort = local
                    s.destinationPort = remote
                    guard f.matches(s) else { continue }
                    if let p = f.requiredPort(.source) { #expect(local == p, "\(filter) matched sport \(local)") }
                    if let p = f.requiredPort(.destination) { #expect(remote == p, "\(filter) matched dport \(remote)") }
                }
            }
        }
    }
}
