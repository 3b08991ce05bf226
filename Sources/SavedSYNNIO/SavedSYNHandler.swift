import NIOCore
import SavedSYN

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What `SavedSYNHandler` learnt about an accepted channel; fired as a user inbound event and kept in
/// the handler (`channel.pipeline.handler(type: SavedSYNHandler.self)`).
public enum SavedSYNEvent: Sendable {
    /// The SYN was read and fingerprinted; `decision` is set when the handler has a policy.
    case fingerprint(SYNFingerprint, decision: SYNPolicy.Decision?)
    /// The kernel had no saved SYN (listener without `TCP_SAVE_SYN`, SYN cookie, already read).
    case noSYN
    /// Reading or parsing failed; the text says what and where.
    case failed(String)
}

/// Reads the saved SYN of an accepted TCP channel when it becomes active, fingerprints it, fires
/// `SavedSYNEvent` and, with a policy, closes the channel at once on `deny` (before any later handler
/// sees `channelActive`).
///
/// The listener must have `TCP_SAVE_SYN` set, e.g. in the server bootstrap:
/// `.serverChannelOption(ChannelOptions.socketOption(.init(rawValue: TCP_SAVE_SYN)!), value: 1)` or
/// `.serverChannelOption(ChannelOptions.socket(IPPROTO_TCP, TCP_SAVE_SYN), value: 1)`.
///
/// SwiftNIO's socket-option getter drops the length getsockopt(2) returns, so the handler reads
/// `TCP_SAVED_SYN` with getsockopt on the channel's file descriptor (`SYNCapture.read`). NIO has no
/// public accessor for that descriptor; the handler finds it by reflection and checks it (its local
/// and peer ports must equal the channel's). When that fails it falls back to NIO's getter with a
/// 1 KiB buffer, where the length is recovered from the headers' own length fields.
public final class SavedSYNHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = NIOAny

    public let database: P0fDatabase?
    public let policy: SYNPolicy?
    public let linkLayer: SYNParser.LinkLayer
    /// The outcome for this channel, once active.
    public private(set) var event: SavedSYNEvent?

    public init(database: P0fDatabase? = nil, policy: SYNPolicy? = nil, linkLayer: SYNParser.LinkLayer = .none) {
        self.database = database
        self.policy = policy
        self.linkLayer = linkLayer
    }

    public var fingerprint: SYNFingerprint? {
        if case let .fingerprint(f, _)? = event { return f }
        return nil
    }

    public func channelActive(context: ChannelHandlerContext) {
        let ev = readEvent(channel: context.channel)
        event = ev
        context.fireUserInboundEventTriggered(ev)
        if case let .fingerprint(_, decision?) = ev, decision.action == .deny {
            context.close(promise: nil)
            return
        }
        context.fireChannelActive()
    }

    func readEvent(channel: Channel) -> SavedSYNEvent {
        let bytes: [UInt8]
        if let fd = Self.fileDescriptor(of: channel) {
            do {
                switch try SYNCapture.read(accepted: fd) {
                case .noSYN: return .noSYN
                case let .syn(b): bytes = b
                }
            } catch {
                return .failed("\(error)")
            }
        } else {
            switch Self.readThroughNIO(channel) {
            case .none: return .noSYN
            case let .some(.success(b)): bytes = b
            case let .some(.failure(e)): return .failed(e.text)
            }
        }
        do {
            let fp = try SYNFingerprint(bytes: bytes, linkLayer: linkLayer, database: database)
            return .fingerprint(fp, decision: policy?.evaluate(fp))
        } catch {
            return .failed("saved SYN: \(error)")
        }
    }

    /// The socket descriptor of a NIOPosix channel, found by reflection (`BaseSocketChannel.socket`
    /// -> `BaseSocket.descriptor`) and verified against the channel's addresses.
    static func fileDescriptor(of channel: Channel) -> Int32? {
        guard let socket = reflectedChild(channel, named: "socket"),
              let fd = reflectedChild(socket, named: "descriptor") as? Int32 else { return nil }
        guard let local = channel.localAddress?.port, let remote = channel.remoteAddress?.port,
              port(of: fd, peer: false) == local, port(of: fd, peer: true) == remote else { return nil }
        return fd
    }

    static func reflectedChild(_ value: Any, named name: String) -> Any? {
        var mirror: Mirror? = Mirror(reflecting: value)
        while let m = mirror {
            for c in m.children where c.label == name { return c.value }
            mirror = m.superclassMirror
        }
        return nil
    }

    static func port(of fd: Int32, peer: Bool) -> Int? {
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &ss) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sp in
                peer ? getpeername(fd, sp, &len) : getsockname(fd, sp, &len)
            }
        }
        guard rc == 0 else { return nil }
        switch Int32(ss.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &ss) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) } }
        case AF_INET6:
            return withUnsafePointer(to: &ss) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) } }
        default:
            return nil
        }
    }

    struct NIOReadError: Error { var text: String }

    /// 1 KiB, enough for any saved SYN NIO's getter can be asked for.
    struct Buffer1K { var words: (SIMD64<UInt64>, SIMD64<UInt64>) = (.zero, .zero) }

    /// Fallback through NIO's getter: nil = no SYN (the kernel wrote nothing, the buffer stays zero).
    static func readThroughNIO(_ channel: Channel) -> Result<[UInt8], NIOReadError>? {
        guard let provider = channel as? SocketOptionProvider else { return .failure(NIOReadError(text: "channel has no socket options")) }
        let f: EventLoopFuture<Buffer1K> = provider.unsafeGetSocketOption(
            level: NIOBSDSocket.OptionLevel(rawValue: Int32(IPPROTO_TCP)), name: NIOBSDSocket.Option(rawValue: TCP_SAVED_SYN))
        guard channel.eventLoop.inEventLoop else { return .failure(NIOReadError(text: "not on the channel's event loop")) }
        var result: Result<Buffer1K, Error>? = nil
        f.whenComplete { result = $0 }
        guard let r = result else { return .failure(NIOReadError(text: "getsockopt(TCP_SAVED_SYN) did not complete")) }
        switch r {
        case let .failure(e): return .failure(NIOReadError(text: "getsockopt(TCP_SAVED_SYN): \(e)"))
        case let .success(buf):
            var b = [UInt8](repeating: 0, count: MemoryLayout<Buffer1K>.size)
            withUnsafeBytes(of: buf) { src in b.withUnsafeMutableBytes { $0.copyMemory(from: src) } }
            guard let n = SYNParser.declaredHeaderLength(b) else { return nil }
            return .success(Array(b[0..<n]))
        }
    }
}

extension SavedSYNHandler: @unchecked Sendable {}
