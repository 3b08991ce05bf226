import BPF
import Glibc
@testable import Kill
import SockDiag
import SocketFilter
import Testing

/// Filter AST → BPF clauses: what translates, into what, and what is refused.
@Suite struct BPFTranslationTests {
    let both = [UInt8(AF_INET), UInt8(AF_INET6)]

    func translate(_ text: String, states: UInt32 = SocketState.allMask, families: [UInt8]? = nil) throws -> BPFTranslation.Outcome {
        BPFTranslation.translate(filter: try SocketFilter.parse(text), states: states, families: families ?? both,
                                 protocols: [.tcp, .udp], cookies: nil, dryRun: false)
    }

    func clauses(_ text: String) throws -> [BPFDestroySpec.Clause] {
        guard case .spec(let s) = try translate(text) else { Issue.record("\(text) did not translate"); return [] }
        return s.clauses
    }

    @Test func portsAddressesAndUids() throws {
        let ne = try clauses("dport != :80")
        #expect(ne.map(\.destinationPorts) == [0...79, 81...65535])
        let c = try clauses("src 10.0.0.0/8 and src 10.1.0.0/16 and sport >= :1024 and uid 1000-1999")
        #expect(c.count == 1)
        #expect(c.first?.source?.description == "10.1.0.0/16")
        #expect(c.first?.sourcePorts == 1024...65535)
        #expect(c.first?.uids == 1000...1999)
        let hostPort = try clauses("dst 10.0.0.1:443 or dst [fd00::1]:8443")
        #expect(hostPort.count == 2 && hostPort[0].destinationPorts == 443...443 && hostPort[1].destination?.isIPv4 == false)
        let notPort = try clauses("not (dport = :22 or dport = :53)")
        #expect(notPort.count == 3)  // (0-21 | 23-65535) and (0-52 | 54-65535), empty pairs dropped
    }

    @Test func statesAndCookies() throws {
        guard case .spec(let s) = try translate("dport = :80", states: SocketState.established.mask) else { Issue.record("no spec"); return }
        #expect(s.clauses.first?.states == [1])
        guard case .spec(let k) = try translate("cookie 7 or cookie 9") else { Issue.record("no spec"); return }
        #expect(k.cookies == [7, 9] && k.clauses.isEmpty && !k.everything)
        guard case .spec(let all) = try translate("") else { Issue.record("no spec"); return }
        #expect(all.everything)
    }

    @Test func disjointOrUnixOnlyMatchesNothing() throws {
        guard case .matchesNothing = try translate("src 10.0.0.0/8 and src 192.168.0.0/16") else { Issue.record("expected nothing"); return }
        guard case .matchesNothing = try translate("dport < :0") else { Issue.record("expected nothing"); return }
    }

    @Test func untranslatable() throws {
        for text in ["not dst 10.0.0.0/8", "dev lo", "fwmark 0x1", "comm nginx", "cookie 5 or dport = :80", "autobound"] {
            guard case .untranslatable(let why) = try translate(text) else { Issue.record("\(text) translated"); continue }
            #expect(!why.isEmpty)
        }
        guard case .untranslatable = try translate("dport = :80", families: [UInt8(AF_INET)]) else { Issue.record("-4 translated"); return }
    }
}
