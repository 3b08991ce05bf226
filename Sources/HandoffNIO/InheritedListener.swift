import Handoff
import NIOCore
import NIOPosix

extension ServerBootstrap {
    /// Start a server channel on a listener inherited through LISTEN_FDS (see `Listeners`), by name.
    ///
    ///     let listeners = try Listeners.inherited()
    ///     let channel = try await ServerBootstrap(group: group)
    ///         .childChannelInitializer { ... }
    ///         .withInheritedListener(named: "http", from: listeners).get()
    ///
    /// NIO takes the fd over (sets O_NONBLOCK on it and closes it with the channel). O_NONBLOCK is
    /// shared with every other process holding the same listener: that is fine for generations of
    /// one NIO server, which all want it.
    public func withInheritedListener(named name: String, from listeners: Listeners) -> EventLoopFuture<Channel> {
        do {
            let fd = try listeners.one(name)
            return withBoundSocket(NIOBSDSocket.Handle(fd))
        } catch {
            return MultiThreadedEventLoopGroup.singleton.next().makeFailedFuture(error)
        }
    }
}
