import ArgumentParser
import SockCtlCLIBase
import SockDiag
#if canImport(Glibc)
import Glibc
#endif

/// The selectors `list`, `kill` and `watch` share, named as in ss.
struct SocketSelectors: ParsableArguments {
    @Flag(name: [.short, .customLong("tcp")], help: "TCP sockets.")
    var tcp = false
    @Flag(name: [.short, .customLong("udp")], help: "UDP sockets.")
    var udp = false
    @Flag(name: [.customShort("w"), .customLong("raw")], help: "RAW sockets.")
    var raw = false
    @Flag(name: [.customShort("x"), .customLong("unix")], help: "UNIX domain sockets.")
    var unix = false
    @Flag(name: [.customShort("4"), .customLong("ipv4")], help: "Only IPv4 sockets.")
    var ipv4 = false
    @Flag(name: [.customShort("6"), .customLong("ipv6")], help: "Only IPv6 sockets.")
    var ipv6 = false
    @Flag(name: [.short, .customLong("all")], help: "Sockets in every state (default: connected ones, as ss); bound-inactive TCP sockets only with `state bound-inactive`.")
    var all = false
    @Flag(name: [.short, .customLong("listening")], help: "Only listening (and unconnected datagram) sockets.")
    var listening = false
    @Option(name: [.customShort("N"), .customLong("netns")], help: ArgumentHelp("Network namespace by name (/run/netns), path, or PID; repeatable (-N as in ss).", valueName: "NAME|PATH|PID"))
    var netns: [String] = []
    @Flag(name: .customLong("all-netns"), help: "Every network namespace on the host, named or not.")
    var allNetns = false

    /// The socket kinds to dump; ss's default (no kind flag) is every kind we know.
    var kinds: [SocketKind] {
        var k: [SocketKind] = []
        if tcp { k.append(.tcp) }
        if udp { k.append(.udp) }
        if raw { k.append(.raw) }
        if unix { k += [.stream, .dgram, .seqpacket] }
        if k.isEmpty {
            k = (ipv4 || ipv6) ? [.tcp, .udp, .raw] : [.tcp, .udp, .raw, .stream, .dgram, .seqpacket]
        }
        return k
    }

    var families: [UInt8] {
        switch (ipv4, ipv6) {
        case (true, false): return [UInt8(AF_INET)]
        case (false, true): return [UInt8(AF_INET6)]
        default: return [UInt8(AF_INET), UInt8(AF_INET6)]
        }
    }

    /// The state mask for one kind when the filter names no state: ss's defaults
    /// (TCP and UNIX: connected states without SYN-RECV and TIME-WAIT; UDP and RAW: established;
    /// -l: listening and unconnected; -a: everything).
    func defaultStates(for kind: SocketKind) -> UInt32 {
        if all { return SocketState.dumpAllMask }
        if listening { return SocketState.listen.mask | SocketState.close.mask }
        switch kind {
        case .udp, .raw: return SocketState.established.mask
        default:
            let all: UInt32 = (1 << 12) - 1
            return all & ~(SocketState.listen.mask | SocketState.close.mask | SocketState.timeWait.mask | SocketState.synRecv.mask | 1)
        }
    }

    func validate() throws {
        if allNetns && !netns.isEmpty {
            throw ValidationError("--all-netns and --netns exclude each other")
        }
        if all && listening {
            throw ValidationError("-a and -l exclude each other: -a already includes listening sockets")
        }
    }
}
