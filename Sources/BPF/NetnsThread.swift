import CSockDestroy
import Glibc

extension BPFSocketDestroyer {
    /// destroy() in another network namespace: starts a dedicated pthread, joins the namespace
    /// named by `netnsPath` (`/run/netns/NAME`, `/proc/PID/ns/net`) with setns(CLONE_NEWNET), runs
    /// the pass there and lets the thread end, so no thread of the process is left moved.
    public func destroy(_ spec: BPFDestroySpec, netnsPath: String) throws(BPFError) -> BPFDestroyResult {
        let job = NetnsJob(path: netnsPath) { [self] () throws(BPFError) in try self.destroy(spec) }
        var tid = pthread_t()
        let arg = Unmanaged.passRetained(job).toOpaque()
        let rc = pthread_create(&tid, nil, { p in
            let job = Unmanaged<NetnsJob>.fromOpaque(p!).takeRetainedValue()
            job.run()
            return nil
        }, arg)
        guard rc == 0 else {
            Unmanaged<NetnsJob>.fromOpaque(arg).release()
            throw .kernel(operation: "pthread_create", errno: rc, detail: "")
        }
        pthread_join(tid, nil)
        return try job.result.get()
    }
}

/// The work of one namespace thread and its outcome (written by that thread, read after join).
private final class NetnsJob: @unchecked Sendable {
    let path: String
    let body: () throws(BPFError) -> BPFDestroyResult
    var result: Result<BPFDestroyResult, BPFError> = .failure(.kernel(operation: "namespace thread", errno: ECANCELED, detail: ""))

    init(path: String, body: @escaping () throws(BPFError) -> BPFDestroyResult) {
        self.path = path
        self.body = body
    }

    func run() {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            result = .failure(.kernel(operation: "open(\(path))", errno: errno, detail: "no such network namespace?"))
            return
        }
        defer { close(fd) }
        guard sockctl_bpf_setns(fd, 0x4000_0000 /* CLONE_NEWNET */) == 0 else {
            let e = errno
            result = .failure(.kernel(operation: "setns(\(path), CLONE_NEWNET)", errno: e,
                                      detail: e == EPERM ? "needs CAP_SYS_ADMIN to join a network namespace" : ""))
            return
        }
        result = Result { () throws(BPFError) in try body() }
    }
}
