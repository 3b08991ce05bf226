import Foundation
import Namespaces
import Netlink
#if canImport(Glibc)
import Glibc
#endif

/// An address or link change seen in one network namespace.
public enum RouteEvent: Sendable, Equatable {
    case addressRemoved(address: String, interface: String?)
    /// The link went down (or was deleted); `addresses` are those it had (the sockets on them are
    /// now unreachable from outside).
    case linkDown(interface: String, index: UInt32, addresses: [String])
    case linkUp(interface: String, index: UInt32)

    public var interface: String? {
        switch self {
        case .addressRemoved(_, let i): return i
        case .linkDown(let i, _, _), .linkUp(let i, _): return i
        }
    }
}

/// Watches one network namespace's rtnetlink address and link groups on a dedicated thread that
/// joined the namespace (setns on a fresh thread, never a shared one). `handler` runs on that
/// thread with the monotonic time (ns) at which the message was received.
public final class RouteMonitor: @unchecked Sendable {
    public let namespace: NetworkNamespace
    private let handler: @Sendable (NetworkNamespace, RouteEvent, UInt64) -> Void
    private let lock = NSLock()
    private var stopped = false
    private var readyFlag = false
    private var failure: String?

    public init(namespace: NetworkNamespace, handler: @escaping @Sendable (NetworkNamespace, RouteEvent, UInt64) -> Void) {
        self.namespace = namespace
        self.handler = handler
    }

    /// True once the subscription is open and the initial link/address tables are read.
    public var isReady: Bool { lock.withLock { readyFlag } }
    public var error: String? { lock.withLock { failure } }

    public func start() {
        let ns = namespace
        Task.detached { [self] in
            do {
                try await NamespaceRunner.run(in: ns) { try self.loop() }
            } catch {
                self.lock.withLock { self.failure = "\(error)" }
            }
        }
    }

    /// Asks the thread to end; it notices within one receive timeout.
    public func stop() { lock.withLock { stopped = true } }
    private var isStopped: Bool { lock.withLock { stopped } }

    private struct LinkState {
        var name: String
        var up: Bool
        var addresses: Set<String> = []
    }

    private func loop() throws {
        let events = try NetlinkSocket(family: RouteConstants.family, receiveBufferSize: 4 << 20)
        for g in [RouteConstants.groupLink, RouteConstants.groupIPv4Address, RouteConstants.groupIPv6Address] {
            try events.join(group: g)
        }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        _ = setsockopt(events.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var links = try snapshot()
        lock.withLock { readyFlag = true }
        while !isStopped {
            do {
                try events.receive { datagram in
                    let now = Self.monotonicNanos()
                    try forEachMessage(in: datagram) { msg in
                        for e in Self.apply(msg, to: &links) { handler(namespace, e, now) }
                    }
                }
            } catch let e as NetlinkError where e.code == EAGAIN || e.code == EWOULDBLOCK {
                continue
            } catch let e as NetlinkError where e.code == ENOBUFS {
                // Events were lost: read the tables again so later changes compare against the truth.
                links = try snapshot()
            }
        }
    }

    /// The namespace's links and addresses now, read on a separate socket.
    private func snapshot() throws -> [UInt32: LinkState] {
        let nl = try NetlinkSocket(family: RouteConstants.family)
        var links: [UInt32: LinkState] = [:]
        try nl.dump(LinkMessage.dumpRequest(), operation: "RTM_GETLINK") { msg in
            if let l = LinkMessage(msg) { links[l.interfaceIndex] = LinkState(name: l.name ?? "\(l.interfaceIndex)", up: l.isUp) }
        }
        try nl.dump(AddressMessage.dumpRequest(), operation: "RTM_GETADDR") { msg in
            if let a = AddressMessage(msg) { links[a.interfaceIndex]?.addresses.insert(a.addressText) }
        }
        return links
    }

    /// Turns one rtnetlink message into events, updating the link table.
    private static func apply(_ msg: NetlinkMessage, to links: inout [UInt32: LinkState]) -> [RouteEvent] {
        if let a = AddressMessage(msg) {
            let text = a.addressText
            if a.removed {
                links[a.interfaceIndex]?.addresses.remove(text)
                return [.addressRemoved(address: text, interface: links[a.interfaceIndex]?.name ?? a.label)]
            }
            links[a.interfaceIndex]?.addresses.insert(text)
            return []
        }
        guard let l = LinkMessage(msg) else { return [] }
        let before = links[l.interfaceIndex]
        let name = l.name ?? before?.name ?? "\(l.interfaceIndex)"
        if l.deleted {
            links[l.interfaceIndex] = nil
            if before?.up == true { return [.linkDown(interface: name, index: l.interfaceIndex, addresses: Array(before!.addresses).sorted())] }
            return []
        }
        var state = before ?? LinkState(name: name, up: false)
        state.name = name
        let wasUp = state.up
        state.up = l.isUp
        links[l.interfaceIndex] = state
        if wasUp && !state.up { return [.linkDown(interface: name, index: l.interfaceIndex, addresses: Array(state.addresses).sorted())] }
        if !wasUp && state.up { return [.linkUp(interface: name, index: l.interfaceIndex)] }
        return []
    }

    public static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
