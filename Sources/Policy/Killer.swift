import Namespaces
import SockDiag
import SocketFilter

/// One kill the daemon asks for: sockets a filter selects in some namespaces (TCP and UDP, IPv4 and
/// IPv6, every state but TIME-WAIT unless the filter names states).
public struct KillOrder: Sendable {
    public var filter: SocketFilter
    /// nil: the calling thread's own namespace (a route monitor's thread), labelled `currentLabel`.
    public var namespaces: [NetworkNamespace]?
    public var currentLabel: String
    public var dryRun: Bool
    public var max: Int?

    public init(filter: SocketFilter, namespaces: [NetworkNamespace]?, currentLabel: String = "", dryRun: Bool, max: Int? = nil) {
        self.filter = filter
        self.namespaces = namespaces
        self.currentLabel = currentLabel
        self.dryRun = dryRun
        self.max = max
    }
}

/// What happened to one selected socket.
public struct KilledSocket: Sendable {
    public var socket: Socket
    public var netns: String
    /// `destroyed`, `already-gone`, `not-destroyable`, `would-destroy`, `failed`.
    public var outcome: String
    public var errno: Int32?

    public init(socket: Socket, netns: String, outcome: String, errno: Int32? = nil) {
        self.socket = socket
        self.netns = netns
        self.outcome = outcome
        self.errno = errno
    }
}

public enum KillFailure: Error, CustomStringConvertible {
    /// More sockets matched than `max`; nothing was destroyed.
    case tooMany(matched: Int, max: Int)
    /// A namespace could not be worked in (vanished, permission).
    case namespace(String, Error)

    public var description: String {
        switch self {
        case .tooMany(let n, let m): return "\(n) sockets match, more than max \(m): nothing destroyed"
        case .namespace(let ns, let e): return "netns \(ns): \(e)"
        }
    }
}

/// The daemon's one door to the kill engine: every kill (events, intervals, API) goes through it.
public protocol SocketKilling: Sendable {
    /// Selects and (unless `dryRun`) destroys; outcomes per socket, namespaces in order.
    func kill(_ order: KillOrder) throws -> [KilledSocket]
}
