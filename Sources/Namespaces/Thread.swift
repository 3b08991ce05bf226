#if canImport(Glibc)
import Glibc
#endif
import CLinuxUAPI

/// A plain POSIX thread running one closure, then exiting. Used so that setns(2) never touches a
/// thread owned by Swift concurrency or Dispatch, and by the other modules that want a thread
/// without Foundation.
public struct POSIXThread: @unchecked Sendable {
    private let id: pthread_t

    private final class Work {
        let name: String
        let body: () -> Void
        init(name: String, _ body: @escaping () -> Void) {
            self.name = name
            self.body = body
        }
    }

    /// Starts a thread running `body`; throws `.system` when pthread_create(3) fails (EAGAIN: the
    /// thread or memory limit).
    public static func start(name: String = "sockctl-netns", _ body: @escaping () -> Void) throws -> POSIXThread {
        let work = Unmanaged.passRetained(Work(name: name, body)).toOpaque()
        var id = pthread_t()
        let rc = pthread_create(&id, nil, { raw in
            let work = Unmanaged<Work>.fromOpaque(raw!).takeRetainedValue()
            sockctl_set_thread_name(work.name)
            work.body()
            return nil
        }, work)
        if rc != 0 {
            Unmanaged<Work>.fromOpaque(work).release()
            throw NamespaceError(.system, "pthread_create: \(String(cString: strerror(rc)))", errno: rc)
        }
        return POSIXThread(id: id)
    }

    public func join() { pthread_join(id, nil) }
    public func detach() { pthread_detach(id) }
}

/// pthread_mutex_t at a stable address.
public final class POSIXMutex: @unchecked Sendable {
    let raw = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    public init() { raw.initialize(to: pthread_mutex_t()); pthread_mutex_init(raw, nil) }
    deinit { pthread_mutex_destroy(raw); raw.deallocate() }
    public func lock() { pthread_mutex_lock(raw) }
    public func unlock() { pthread_mutex_unlock(raw) }
    public func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lock(); defer { unlock() }
        return try body()
    }
}

/// pthread_cond_t at a stable address.
public final class POSIXCondition: @unchecked Sendable {
    let raw = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    public init() { raw.initialize(to: pthread_cond_t()); pthread_cond_init(raw, nil) }
    deinit { pthread_cond_destroy(raw); raw.deallocate() }
    public func wait(_ mutex: POSIXMutex) { pthread_cond_wait(raw, mutex.raw) }
    public func broadcast() { pthread_cond_broadcast(raw) }
}
