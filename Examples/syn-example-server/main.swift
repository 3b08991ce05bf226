// A TCP server on SwiftNIO that greets each client with what its SYN says about it.
//
//   swift run syn-example-server [PORT] [--db /etc/p0f/p0f.fp] [--policy policy.yaml]
//
// Connect with `nc 127.0.0.1 PORT`: the server answers one line (OS label, p0f signature, MuonFP,
// policy decision and tags) and closes; clients the policy denies are closed at once, with no answer.
// Each client is also logged as one line on stdout (line-buffered).
import NIOCore
import NIOPosix
import SavedSYN
import SavedSYNNIO

#if canImport(Glibc)
import Glibc
#endif

setvbuf(stdout, nil, _IOLBF, 0)
var args = Array(CommandLine.arguments.dropFirst())
var port = 8080
var database = BuiltinSignatures.database
var policy: SYNPolicy? = nil
while !args.isEmpty {
    let a = args.removeFirst()
    switch a {
    case "--db":
        guard !args.isEmpty else { fputs("--db needs a file\n", stderr); exit(2) }
        do { database = try BuiltinSignatures.database.merged(with: P0fDatabase(contentsOf: args.removeFirst())) }
        catch { fputs("\(error)\n", stderr); exit(2) }
    case "--policy":
        guard !args.isEmpty else { fputs("--policy needs a file\n", stderr); exit(2) }
        do { policy = try SYNPolicy(contentsOf: args.removeFirst()) } catch { fputs("\(error)\n", stderr); exit(2) }
    default:
        guard let p = Int(a), (1...65535).contains(p) else { fputs("usage: syn-example-server [PORT] [--db FILE] [--policy FILE]\n", stderr); exit(2) }
        port = p
    }
}

/// Answers with the fingerprint the SavedSYNHandler in front of it found.
final class GreetingHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let ev = event as? SavedSYNEvent else { return context.fireUserInboundEventTriggered(event) }
        let text: String
        var denied = false
        switch ev {
        case let .fingerprint(fp, decision):
            text = "os=\(fp.os ?? "unknown") signature=\(fp.signature) fingerprint=\(fp.fingerprint)"
                + (decision.map { " policy=\($0.action.rawValue)" + ($0.tags.isEmpty ? "" : " tags=" + $0.tags.joined(separator: ",")) } ?? "")
                + "\n"
            denied = decision?.action == .deny
        case .noSYN: text = "no saved SYN\n"
        case let .failed(e): text = "error: \(e)\n"
        }
        print(text, terminator: "")
        // A denied client gets nothing: SavedSYNHandler closes its channel right after this event.
        if denied { return }
        var buf = context.channel.allocator.buffer(capacity: text.utf8.count)
        buf.writeString(text)
        context.writeAndFlush(NIOAny(buf)).whenComplete { _ in context.close(promise: nil) }
    }
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
    .serverChannelOption(ChannelOptions.socket(SocketOptionLevel(IPPROTO_TCP), SocketOptionName(TCP_SAVE_SYN)), value: 1)
    .childChannelInitializer { [database, policy] channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(SavedSYNHandler(database: database, policy: policy))
            try channel.pipeline.syncOperations.addHandler(GreetingHandler())
        }
    }
let server = try bootstrap.bind(host: "::", port: port).wait()
print("listening on \(server.localAddress!)")
try server.closeFuture.wait()
