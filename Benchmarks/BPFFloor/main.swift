// sockctl-bpf-floor: times one BPF destroy pass in a network namespace (used by scripts/bench-bpf-floor).
// Usage: sockctl-bpf-floor NETNS-PATH [--records] [--dry-run] [--cookie-sample N]
//        sockctl-bpf-floor --per-netns NETNS-PATH... : one loaded object, a dry-run pass in each
//        namespace on its own setns thread (destroy(_:netnsPath:)); prints the time per namespace.
// --cookie-sample N: list the sockets first (dry run, untimed), then time destroying every Nth
// cookie with the cookie-set mode (an exact destroy of a pre-selected 1/N).
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
if args[1] == "--per-netns" {
    let paths = Array(args.dropFirst(2))
    let start = monotonicNanos()
    var visited: UInt64 = 0
    for path in paths {
        do { visited += try destroyer.destroy(.all(dryRun: true), netnsPath: path).counts.visited } catch {
            fputs("sockctl-bpf-floor: \(path): \(error)\n", stderr)
            exit(4)
        }
    }
    let total = Double(monotonicNanos() - start) / 1e6
    print("load_ms=\(Double(loaded - t0) / 1e6) namespaces=\(paths.count) total_ms=\(total) per_netns_ms=\(total / Double(max(paths.count, 1))) visited=\(visited)")
    exit(0)
}
let fd = open(args[1], O_RDONLY | O_CLOEXEC)
guard fd >= 0, sockctl_bpf_setns(fd, 0x4000_0000 /* CLONE_NEWNET */) == 0 else {
    fputs("sockctl-bpf-floor: cannot enter \(args[1]): \(String(cString: strerror(errno)))\n", stderr)
    exit(3)
}
close(fd)
var spec = BPFDestroySpec(protocols: [.tcp], dryRun: args.contains("--dry-run"), everything: true,
                          collectRecords: args.contains("--records"))
if let i = args.firstIndex(of: "--cookie-sample"), i + 1 < args.count, let every = Int(args[i + 1]), every > 0 {
    do {
        let listed = try destroyer.destroy(.all(protocols: [.tcp], dryRun: true))
        let picked = listed.records.enumerated().filter { $0.offset % every == 0 }.map(\.element.cookie)
        spec = BPFDestroySpec(cookies: Set(picked), protocols: [.tcp])
    } catch {
        fputs("sockctl-bpf-floor: \(error)\n", stderr)
        exit(4)
    }
}
let t1 = monotonicNanos()
do {
    let r = try destroyer.destroy(spec)
    let t2 = monotonicNanos()
    print("load_ms=\(Double(loaded - t0) / 1e6) destroy_ms=\(Double(t2 - t1) / 1e6) visited=\(r.counts.visited) matched=\(r.counts.matched) destroyed=\(r.counts.destroyed) failed=\(r.counts.failed) records=\(r.records.count)")
} catch {
    fputs("sockctl-bpf-floor: \(error)\n", stderr)
    exit(4)
}
