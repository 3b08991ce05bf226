import Testing
@testable import Netlink

@Test func headerSizeMatchesKernel() {
    #expect(NetlinkHeader.size == 16)
}
