import Testing
@testable import SockDiag
import Namespaces
#if canImport(Glibc)
import Glibc
#endif

/// `Socket` keeps its rarely filled fields out of line and its addresses as raw bytes; it must still
/// behave as a plain value: copies are independent, and every field reads back what was stored.
@Suite struct SocketValueTests {
    @Test func staysSmall() {
        // A kill copies each socket several times; the compact layout is what makes that cheap.
        #expect(MemoryLayout<Socket>.size <= 152)
    }

    @Test func addressesReadBackWhatWasStored() {
        var s = Socket(family: UInt8(AF_INET6), kind: .tcp, state: .established)
        #expect(s.source == nil && s.destination == nil)
        let v6 = InetAddress("2001:db8::1")!
        let v4 = InetAddress("192.0.2.7")!
        s.source = v6
        s.destination = v4
        #expect(s.source == v6)
        #expect(s.destination == v4)
        #expect(s.destination?.isIPv4 == true)
        s.source = nil
        #expect(s.source == nil)
        #expect(s.destination == v4)
    }

    @Test func copiesOfOutOfLineFieldsAreIndependent() {
        var a = Socket(family: UInt8(AF_INET), kind: .tcp, state: .established)
        #expect(a.processes.isEmpty && a.congestion == nil && a.memInfo == nil && a.tcpInfo == nil)
        a.congestion = "cubic"
        a.processes = [SocketOwner(pid: 10, comm: "a", fd: 3)]
        var b = a
        b.congestion = "bbr"
        b.processes.append(SocketOwner(pid: 11, comm: "b", fd: 4))
        var m = SocketMemInfo()
        m.drops = 7
        b.memInfo = m
        #expect(a.congestion == "cubic")
        #expect(a.processes.map(\.pid) == [10])
        #expect(a.memInfo == nil)
        #expect(b.congestion == "bbr")
        #expect(b.processes.map(\.pid) == [10, 11])
        #expect(b.memInfo?.drops == 7)
        var raw = [UInt8](repeating: 0, count: 8)
        raw[0] = 1 // tcpi_state
        let info = raw.withUnsafeBytes { TCPInfo(bytes: $0) }
        a.tcpInfo = info
        #expect(a.tcpInfo != nil && b.tcpInfo == nil)
        a.congestion = nil
        #expect(a.congestion == nil && b.congestion == "bbr")
    }
}
