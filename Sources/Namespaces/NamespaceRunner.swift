#if canImport(Glibc)
import Glibc
#endif
import CLinuxUAPI

/// What a streaming run (`NamespaceRunner.stream`) reports to the caller, per namespace and in the
/// namespaces' order: its items, then exactly one `.finished` or `.failed`.
public enum NamespaceEvent<Item> {
    case item(Item)
    case finished
    case failed(Error)
}

/// Runs work inside network namespaces on pthreads of our own that call setns(fd, CLONE_NEWNET).
///
/// Why threads of our own: setns(2) changes the namespace of the calling *thread* only. Doing it on
/// a Swift-concurrency or Dispatch worker would leave that shared worker in the wrong namespace for
/// whatever runs on it next. Our threads run nothing but bodies given here, each after entering
/// the body's namespace, and exit when the call returns. `run` starts one thread per call; `map`
/// and `stream` start at most `parallelism` workers that take the namespaces in turn, entering
/// each: creating a thread costs more than entering a namespace (about 75 µs against 10 µs here),
/// which adds up over hundreds of namespaces.
///
/// Sockets opened inside the body (e.g. a NETLINK_SOCK_DIAG socket) belong to that namespace for
/// their whole life, also after the thread exits or moves on; descriptors are process-wide and may
/// be returned. Interface lookups (`Interfaces`) inside the body see the namespace's interfaces.
public enum NamespaceRunner {
    /// Default number of namespaces worked on at once by `map` and `stream`.
    public static let defaultParallelism = 3

    /// Runs `body` inside `namespace` on a new thread and waits for it. Throws what `body` throws,
    /// or a `NamespaceError` when the namespace cannot be entered (`.vanished`, `.permissionDenied`).
    /// Blocks the calling thread; from async code prefer the async overload.
    public static func run<T>(in namespace: NetworkNamespace, _ body: () throws -> T) throws -> T {
        try withoutActuallyEscaping(body) { body in
            var result: Result<T, Error>?
            try withUnsafeMutablePointer(to: &result) { slot in
                let address = UnsafeMutableRawPointer(slot)
                let thread = try POSIXThread.start {
                    let slot = address.assumingMemoryBound(to: Result<T, Error>?.self)
                    slot.pointee = Result { try enter(namespace); return try body() }
                }
                thread.join()
            }
            return try result!.get()
        }
    }

    /// Async form of `run`: the caller's task is suspended, not blocked, while the thread works.
    public static func run<T>(in namespace: NetworkNamespace, _ body: @escaping () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            do {
                let thread = try POSIXThread.start {
                    continuation.resume(with: Result { try enter(namespace); return try body() })
                }
                thread.detach()
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }

    /// Runs `body` once per namespace, at most `parallelism` at a time (that many worker threads
    /// taking the namespaces in turn); returns the results in the order of `namespaces`.
    public static func map<T>(
        _ namespaces: [NetworkNamespace], parallelism: Int = defaultParallelism,
        _ body: @escaping (NetworkNamespace) throws -> T
    ) -> [Result<T, Error>] {
        var results: [Result<T, Error>] = []
        results.reserveCapacity(namespaces.count)
        var pending: T?
        // `consume` below cannot throw, so neither can this call.
        try! stream(namespaces, parallelism: parallelism, bufferLimit: 1, produce: { ns, emit in
            try emit(try body(ns))
        }, consume: { _, event in
            switch event {
            case .item(let value): pending = value
            case .finished: results.append(.success(pending!)); pending = nil
            case .failed(let error): results.append(.failure(error)); pending = nil
            }
        })
        return results
    }

    /// Streams items produced inside many namespaces to the caller, in a stable order: every event
    /// of `namespaces[0]`, then of `namespaces[1]`, and so on, each namespace ending with `.finished`
    /// or `.failed`. `consume` runs on the calling thread, one event at a time, while later
    /// namespaces are still being worked on, so a printer can print the first namespace's sockets
    /// while the next ones are dumped.
    ///
    /// At most `parallelism` namespaces are worked on at once, by that many worker threads that take
    /// the namespaces in order and enter each.
    /// Memory stays bounded: a producer whose namespace is not yet being consumed blocks in `emit`
    /// once `bufferLimit` items wait (emit batches, e.g. one array per netlink recv, to cut overhead).
    ///
    /// When `consume` throws, every producer's next `emit` throws `NamespaceError(.cancelled)`, no
    /// further namespace is started, all threads are joined, and the error is rethrown.
    public static func stream<Item>(
        _ namespaces: [NetworkNamespace], parallelism: Int = defaultParallelism, bufferLimit: Int = 1024,
        produce: @escaping (NetworkNamespace, _ emit: (Item) throws -> Void) throws -> Void,
        consume: (NetworkNamespace, NamespaceEvent<Item>) throws -> Void
    ) throws {
        if namespaces.isEmpty { return }
        let workers = min(max(1, parallelism), namespaces.count)
        // Claimed namespaces may run ahead of the consumer by this many (bounds what waits in
        // finished slots while the consumer is still printing an earlier one).
        let shared = StreamState<Item>(count: namespaces.count, limit: max(1, bufferLimit), ahead: workers * 4)
        var threads: [POSIXThread] = []
        threads.reserveCapacity(workers)
        for _ in 0..<workers {
            do {
                threads.append(try POSIXThread.start {
                    while let index = shared.claim() {
                        let ns = namespaces[index]
                        let outcome = Result<Void, Error> {
                            try enter(ns)
                            try produce(ns) { item in try shared.push(item, slot: index) }
                        }
                        shared.finish(slot: index, outcome.failure)
                    }
                })
            } catch {
                // Fewer workers than asked for still get through every namespace; none at all is
                // reported per namespace, as before.
                if threads.isEmpty {
                    for index in namespaces.indices { try consume(namespaces[index], .failed(error)) }
                    return
                }
                break
            }
        }
        defer { for t in threads { t.join() } }

        for index in namespaces.indices {
            shared.consuming(index)
            var done = false
            while !done {
                let (batch, end) = shared.take(slot: index)
                do {
                    for item in batch { try consume(namespaces[index], .item(item)) }
                    if let end {
                        if let error = end { try consume(namespaces[index], .failed(error)) }
                        else { try consume(namespaces[index], .finished) }
                    }
                } catch {
                    // Producers' next emit throws .cancelled; no new namespace is claimed; the
                    // deferred joins wait for the bodies in hand to return.
                    shared.cancel()
                    throw error
                }
                done = end != nil
            }
        }
    }

    /// Enters `namespace` on the calling thread: open one of its paths, setns(CLONE_NEWNET), close.
    /// Only ever called on a thread started by this type.
    static func enter(_ namespace: NetworkNamespace) throws {
        let fd = try namespace.open()
        defer { close(fd) }
        if sockctl_setns(fd, sockctl_CLONE_NEWNET) != 0 {
            let err = errno
            if err == EPERM {
                throw NamespaceError(.permissionDenied, "setns(CLONE_NEWNET) into \(namespace.label): \(String(cString: strerror(err))) (needs CAP_SYS_ADMIN; run as root)", errno: err)
            }
            throw NamespaceError.syscall("setns(CLONE_NEWNET) into \(namespace.label) via", path: namespace.path, errno: err)
        }
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let e) = self { return e }
        return nil
    }
}

/// Per-namespace bounded buffers between producer threads and the consuming caller, guarded by
/// one mutex; `ready` wakes the consumer, `space` wakes producers.
private final class StreamState<Item>: @unchecked Sendable {
    struct Slot {
        var items: [Item] = []
        var end: Error?? = nil  // nil: running; .some(nil): finished; .some(error): failed
    }
    private var slots: [Slot]
    private let limit: Int
    private let ahead: Int
    private var cancelled = false
    /// The next namespace a worker may claim, and the one the consumer is on.
    private var nextClaim = 0
    private var consumerAt = 0
    private var claimersWaiting = 0
    // Wake-ups only when someone sleeps: a futex wake per item would dominate the handoff cost.
    private var consumerWaiting = false
    private var producersWaiting = 0
    private let lock = POSIXMutex()
    private let ready = POSIXCondition()
    private let space = POSIXCondition()

    init(count: Int, limit: Int, ahead: Int) {
        slots = Array(repeating: Slot(), count: count)
        self.limit = limit
        self.ahead = max(1, ahead)
    }

    /// The next namespace for a worker, in order; waits while the consumer is more than `ahead`
    /// namespaces behind; nil when all are claimed or the run was cancelled.
    func claim() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        while !cancelled && nextClaim < slots.count && nextClaim >= consumerAt + ahead {
            claimersWaiting += 1
            space.wait(lock)
            claimersWaiting -= 1
        }
        if cancelled || nextClaim >= slots.count { return nil }
        nextClaim += 1
        return nextClaim - 1
    }

    /// The consumer moved on to slot `i` (the slots before it are done with).
    func consuming(_ i: Int) {
        lock.lock()
        consumerAt = i
        if i > 0 { slots[i - 1].items = [] }
        if claimersWaiting > 0 { space.broadcast() }
        lock.unlock()
    }

    func push(_ item: Item, slot i: Int) throws {
        lock.lock()
        defer { lock.unlock() }
        while slots[i].items.count >= limit && !cancelled {
            producersWaiting += 1
            space.wait(lock)
            producersWaiting -= 1
        }
        if cancelled { throw NamespaceError(.cancelled, "stopped by the caller") }
        slots[i].items.append(item)
        if consumerWaiting { ready.broadcast() }
    }

    func finish(slot i: Int, _ error: Error?) {
        lock.lock()
        slots[i].end = .some(error)
        if consumerWaiting { ready.broadcast() }
        lock.unlock()
    }

    /// Waits until slot `i` has items or has ended; returns the items taken and, once the slot is
    /// empty and ended, its end.
    func take(slot i: Int) -> ([Item], Error??) {
        lock.lock()
        defer { lock.unlock() }
        while slots[i].items.isEmpty && slots[i].end == nil {
            consumerWaiting = true
            ready.wait(lock)
            consumerWaiting = false
        }
        var batch: [Item] = []
        swap(&batch, &slots[i].items)
        slots[i].items.reserveCapacity(min(limit, 1024))
        if producersWaiting > 0 { space.broadcast() }
        return (batch, slots[i].end)
    }

    func cancel() {
        lock.lock()
        cancelled = true
        space.broadcast()
        lock.unlock()
    }
}
