import CLinuxUAPI
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reporting that trails the destroys: a thread of its own, at a lower CPU priority (nice +10),
/// runs the jobs it is given in order. Event and interval kills hand it their JSON lines, metrics
/// and `/v1/events` records, so that the thread that destroyed the sockets is free at once and the
/// reporting of 10,000 sockets (tens of milliseconds of string work) does not take CPU from the
/// processes whose sockets were just aborted, or from the next event's destroys.
final class Reporter: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    /// Jobs handed over and not finished yet (queued or running).
    private var outstanding = 0

    /// nice value of the reporting thread (Linux: per thread).
    static let niceness: Int32 = 10

    init() {
        let t = Foundation.Thread { [self] in loop() }
        t.name = "sockctl-report"
        t.start()
    }

    func submit(_ job: @escaping () -> Void) {
        condition.lock()
        jobs.append(job)
        outstanding += 1
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until every job handed over so far has run (shutdown: nothing reported is lost).
    func drain() {
        condition.lock()
        while outstanding > 0 { condition.wait() }
        condition.unlock()
    }

    private func loop() {
        // Only this thread: setpriority(PRIO_PROCESS, tid) is per thread on Linux.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(sockctl_gettid()), Self.niceness)
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let batch = jobs
            jobs = []
            condition.unlock()
            for job in batch {
                job()
                condition.lock()
                outstanding -= 1
                condition.broadcast()
                condition.unlock()
            }
        }
    }
}
