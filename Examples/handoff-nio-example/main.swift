// handoff-nio-example: a SwiftNIO server on a listener inherited through LISTEN_FDS
// (ServerBootstrap.withInheritedListener from HandoffNIO). Each connection gets
// "hello from PID\n" and is closed. Says READY=1 once the channel is up; exits on SIGTERM.
import Foundation
import Handoff
import HandoffNIO
import NIOCore
import NIOPosix

final class Hello: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    func channelActive(context: ChannelHandlerContext) {
        let buffer = context.channel.allocator.buffer(string: "hello from \(getpid())\n")
        context.writeAndFlush(NIOAny(buffer)).whenComplete { _ in context.close(promise: nil) }
    }
}

do {
    let listeners = try Listeners.inherited()
    let name = CommandLine.arguments.dropFirst().first ?? listeners.all.first?.name ?? "http"
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let channel = try ServerBootstrap(group: group)
        .childChannelInitializer { $0.pipeline.addHandler(Hello()) }
        .withInheritedListener(named: name, from: listeners)
        .wait()
    try ServiceNotify.ready()
    signal(SIGTERM, SIG_IGN)
    let term = DispatchSource.makeSignalSource(signal: SIGTERM, queue: DispatchQueue(label: "sigterm"))
    term.setEventHandler { _ = try? ServiceNotify.stopping(); channel.close(promise: nil) }
    term.resume()
    try channel.closeFuture.wait()
    exit(0)
} catch {
    FileHandle.standardError.write(Data("handoff-nio-example: \(error)\n".utf8))
    exit(2)
}
