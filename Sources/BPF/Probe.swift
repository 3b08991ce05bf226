import Glibc

extension BPFSocketDestroyer {
    /// End-to-end check in the calling thread's network namespace, like Cilium's and the issue's
    /// "destroy a socket of our own": binds a UDP socket to an ephemeral port (works even with
    /// loopback down), destroys exactly its cookie with the iterator, and requires the kernel to
    /// report ECONNABORTED on it. Touches no other socket (cookie-set mode).
    /// Throws `.kernelLacksSockDestroy` when the kfunc did not act.
    public func probe() throws(BPFError) {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .kernel(operation: "socket(AF_INET, SOCK_DGRAM)", errno: errno, detail: "") }
        defer { close(fd) }
        var any = sockaddr_in()
        any.sin_family = sa_family_t(AF_INET)
        let bound = withUnsafePointer(to: &any) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw .kernel(operation: "bind(probe socket)", errno: errno, detail: "") }
        var cookie: UInt64 = 0
        var len = socklen_t(8)
        guard getsockopt(fd, SOL_SOCKET, 57 /* SO_COOKIE */, &cookie, &len) == 0 else {
            throw .kernel(operation: "getsockopt(SO_COOKIE)", errno: errno, detail: "")
        }
        let result = try destroy(BPFDestroySpec(cookies: [cookie], protocols: [.udp]))
        guard let record = result.records.first, record.cookie == cookie else {
            throw .kernelLacksSockDestroy(detail: "the udp iterator did not see the probe socket")
        }
        guard record.outcome == .destroyed else {
            throw .kernelLacksSockDestroy(detail: "bpf_sock_destroy on the probe socket: \(record.outcome)")
        }
        var soError: Int32 = 0
        len = socklen_t(4)
        _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
        guard soError == ECONNABORTED else {
            throw .kernelLacksSockDestroy(detail: "probe socket error is \(soError), expected ECONNABORTED")
        }
    }
}
