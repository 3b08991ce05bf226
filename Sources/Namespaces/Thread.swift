#if canImport(Glibc)
import Glibc
#endif
import CLinuxUAPI

/// A plain POSIX thread running one closure, then exiting. Used so that setns(2) never touches a
/// thread owned by Swift concurrency or Dispatch.
struct Thread {
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
    static func start(name: String = "sockctl-netns", _ body: @escaping () -> Void) throws -> Thread {
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
        return Thread(id: id)
    }

    func join() { pthread_join(id, nil) }
    func detach() { pthread_detach(id) }
}

/// pthread_mutex_t at a stable address.
final class Mutex: @unchecked Sendable {
    let raw = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    init() { raw.initialize(to: pthread_mutex_t()); pthread_mutex_init(raw, nil) }
    deinit { pthread_mutex_destroy(raw); raw.deallocate() }
    func lock() { pthread_mutex_lock(raw) }
    func unlock() { pthread_mutex_unlock(raw) }
}

/// pthread_cond_t at a stable address.
final class Condition: @unchecked Sendable {
    let raw = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    init() { raw.initialize(to: pthread_cond_t()); pthread_cond_init(raw, nil) }
    deinit { pthread_cond_destroy(raw); raw.deallocate() }
    func wait(_ mutex: Mutex) { pthread_cond_wait(raw, mutex.raw) }
    func broadcast() { pthread_cond_broadcast(raw) }
}
