// sockctl-bpf-floor: times one BPF destroy pass in a network namespace (used by scripts/bench-bpf-floor).
// Usage: sockctl-bpf-floor NETNS-PATH [--records] [--dry-run]
// Loads the BPF object in the current namespace, then setns(CLONE_NEWNET) on this (main, only
// user) thread and runs "destroy every TCP socket". Prints one line: key=value pairs.
import BPF
import CSockDestroy
import Glibc

func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

let args = CommandLine.arguments
guard args.count >= 2 else {
    fputs("usage: sockctl-bpf-floor NETNS-PATH [--records] [--dry-run]\n", stderr)
    exit(2)
}
let t0 = monotonicNanos()
let destroyer: BPFSocketDestroyer
do { destroyer = try BPFSocketDestroyer() } catch {
    fputs("sockctl-bpf-floor: \(error)\n", stderr)
    exit(3)
}
let loaded = monotonicNanos()
let fd = open(args[1], O_RDONLY | O_CLOEXEC)
guard fd >= 0, sockctl_bpf_setns(fd, 0x4000_0000 /* CLONE_NEWNET */) == 0 else {
    fputs("sockctl-bpf-floor: cannot enter \(args[1]): \(String(cString: strerror(errno)))\n", stderr)
    exit(3)
}
close(fd)
let spec = BPFDestroySpec(protocols: [.tcp], dryRun: args.contains("--dry-run"), everything: true,
                          collectRecords: args.contains("--records"))
let t1 = monotonicNanos()
do {
    let r = try destroyer.destroy(spec)
    let t2 = monotonicNanos()
    print("load_ms=\(Double(loaded - t0) / 1e6) destroy_ms=\(Double(t2 - t1) / 1e6) visited=\(r.counts.visited) matched=\(r.counts.matched) destroyed=\(r.counts.destroyed) failed=\(r.counts.failed) records=\(r.records.count)")
} catch {
    fputs("sockctl-bpf-floor: \(error)\n", stderr)
    exit(4)
}
