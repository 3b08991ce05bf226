import Testing
@testable import Netlink

/// rtnetlink messages captured from Linux 6.18 (a veth pair "dummy0"/"dummy1" in a test namespace,
/// `ip addr del` / `ip link set down`), decoded field by field against linux/if_addr.h and rtnetlink.h.
@Suite struct RouteWireTests {
    static func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    static func decode<T>(_ bytes: [UInt8], _ parse: (NetlinkMessage) -> T?) throws -> [T] {
        var out: [T] = []
        try bytes.withUnsafeBytes { b in try forEachMessage(in: b) { if let v = parse($0) { out.append(v) } } }
        return out
    }

    // RTM_DELADDR (21), 80 bytes: ifaddrmsg {AF_INET, /24, flags 0x80 (IFA_F_PERMANENT), scope 0, index 3},
    // IFA_ADDRESS 10.9.8.7, IFA_LOCAL 10.9.8.7, IFA_LABEL "dummy0", IFA_FLAGS, IFA_CACHEINFO.
    static let delAddr4 = hex("50000000150000003a80046bbc5900000218800003000000080001000a090807080002000a0908070b00030064756d6d79300000080008008000000014000600ffffffffffffffff00ac010000ac0100")
    // RTM_DELADDR, 72 bytes: ifaddrmsg {AF_INET6, /64, 0x40, scope 0, index 3}, IFA_ADDRESS 2001:db8::7, ...
    static let delAddr6 = hex("480000001500000000000000000000000a408200030000001400010020010db800000000000000000000000714000600ffffffffffffffff08ac010008ac01000800080082000000")
    // RTM_NEWADDR (20), the same IPv4 address being added.
    static let newAddr4 = hex("50000000140000003a80046bb65900000218800003000000080001000a090807080002000a0908070b00030064756d6d79300000080008008000000014000600ffffffffffffffff00ac010000ac0100")
    // RTM_NEWLINK (16), cut after IFLA_IFNAME (length set to 44): ifinfomsg {AF_UNSPEC, ARPHRD_ETHER,
    // index 3, flags UP|BROADCAST|RUNNING|MULTICAST|LOWER_UP = 0x11043, change 0}, IFLA_IFNAME "dummy0".
    static let newLinkUp = hex("2c000000100000000000000000000000000001000300000043100100000000000b00030064756d6d79300000")
    // The same link after `ip link set dummy0 down`: flags BROADCAST|MULTICAST = 0x1002.
    static let newLinkDown = hex("2c000000100000000000000000000000000001000300000002100000010000000b00030064756d6d79300000")

    @Test func deladdrIPv4() throws {
        let m = try Self.decode(Self.delAddr4, AddressMessage.init)
        #expect(m == [AddressMessage(removed: true, family: 2, prefixLength: 24, scope: 0, interfaceIndex: 3,
                                     address: [10, 9, 8, 7], label: "dummy0")])
        #expect(m.first?.addressText == "10.9.8.7")
    }

    @Test func deladdrIPv6() throws {
        let m = try Self.decode(Self.delAddr6, AddressMessage.init)
        #expect(m.count == 1)
        #expect(m.first?.removed == true && m.first?.family == 10 && m.first?.prefixLength == 64 && m.first?.interfaceIndex == 3)
        #expect(m.first?.addressText == "2001:db8::7")
    }

    @Test func newaddrIsNotRemoval() throws {
        let m = try Self.decode(Self.newAddr4, AddressMessage.init)
        #expect(m.first?.removed == false)
        #expect(try Self.decode(Self.newAddr4, LinkMessage.init).isEmpty)
    }

    @Test func newlinkUpAndDown() throws {
        let up = try Self.decode(Self.newLinkUp, LinkMessage.init)
        #expect(up == [LinkMessage(deleted: false, interfaceIndex: 3, flags: 0x11043, change: 0, name: "dummy0")])
        #expect(up.first?.isUp == true)
        let down = try Self.decode(Self.newLinkDown, LinkMessage.init)
        #expect(down.first?.isUp == false && down.first?.name == "dummy0" && down.first?.change == 1)
        #expect(try Self.decode(Self.newLinkUp, AddressMessage.init).isEmpty)
    }

    @Test func shortPayloadsAreRejected() throws {
        // An ifaddrmsg cut to 6 bytes, and one with no address attribute, decode to nothing.
        let short: [UInt8] = [22, 0, 0, 0, 21, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 24, 0, 0, 3, 0]
        #expect(try Self.decode(short + [0, 0], AddressMessage.init).isEmpty)
        let noAddr: [UInt8] = [24, 0, 0, 0, 21, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 24, 0, 0, 3, 0, 0, 0]
        #expect(try Self.decode(noAddr, AddressMessage.init).isEmpty)
    }

    @Test func dumpRequestsGoldenBytes() {
        #expect(AddressMessage.dumpRequest().encode(sequence: 9) ==
                [24, 0, 0, 0, 22, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0] + [0, 0, 0, 0, 0, 0, 0, 0])
        var link = LinkMessage.dumpRequest()
        link.flags = [.request, .dump]
        #expect(link.encode(sequence: 1) == [32, 0, 0, 0, 18, 0, 0x01, 0x03, 1, 0, 0, 0, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 16))
    }

    @Test func ipv6TextForms() {
        #expect(AddressMessage.format([0xfe, 0x80] + [UInt8](repeating: 0, count: 6) + [0x9c, 0xde, 0x6f, 0xff, 0xfe, 0x90, 0xe9, 0x1e])
                == "fe80::9cde:6fff:fe90:e91e")
        #expect(AddressMessage.format([UInt8](repeating: 0, count: 15) + [1]) == "::1")
        #expect(AddressMessage.format([0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]) == "2001:db8:1::1:0:1")  // the first longest zero run is compressed
    }
}
