// Times ProcessIndex.build() on this host: `sockctl-bench-procindex [--threads N] [--runs R]`;
// with --discover, NetworkNamespace.discoverAll() instead; with --stream N, the streaming handoff.
// Prints one line per run and a summary: best and median milliseconds, sockets and descriptors seen.
#if canImport(Glibc)
import Glibc
#endif
import Namespaces

var threads = 1
var runs = 5
var discover = false
var streamItems = 0
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--threads": threads = Int(args.popFirst() ?? "") ?? 1
    case "--runs": runs = Int(args.popFirst() ?? "") ?? 5
    case "--discover": discover = true
    case "--stream": streamItems = Int(args.popFirst() ?? "") ?? 100_000
    default:
        fputs("usage: sockctl-bench-procindex [--threads N] [--runs R] [--discover] [--stream N]\n", stderr)
        exit(2)
    }
}

func ms(_ v: Double) -> String {
    let tenths = Int((v * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) * 1e3 + Double(ts.tv_nsec) / 1e6
}

var times: [Double] = []
if streamItems > 0 {
    // Times NamespaceRunner.stream handing N items, one emit each, from 4 copies of the current
    // namespace (parallelism 3) to this thread: the per-item cost of the streaming handoff.
    let here = try NetworkNamespace.current()
    for run in 1...max(1, runs) {
        var received = 0
        let t0 = now()
        try NamespaceRunner.stream([here, here, here, here], produce: { _, emit in
            for i in 0..<(streamItems / 4) { try emit(i) }
        }, consume: { _, event in
            if case .item = event { received += 1 }
        })
        let elapsed = now() - t0
        times.append(elapsed)
        print("run \(run): \(ms(elapsed)) ms for \(received) items")
    }
    times.sort()
    print("stream best_ms=\(ms(times[0])) median_ms=\(ms(times[times.count / 2]))")
    exit(0)
}
if discover {
    // Times NetworkNamespace.discoverAll() instead (the --all-netns scan).
    for run in 1...max(1, runs) {
        let t0 = now()
        let found = try NetworkNamespace.discoverAll()
        let elapsed = now() - t0
        times.append(elapsed)
        print("run \(run): \(ms(elapsed)) ms, \(found.count) namespaces")
    }
    times.sort()
    print("discover best_ms=\(ms(times[0])) median_ms=\(ms(times[times.count / 2]))")
    exit(0)
}
for run in 1...max(1, runs) {
    let t0 = now()
    let index = try ProcessIndex.build(threads: threads)
    let elapsed = now() - t0
    times.append(elapsed)
    print("run \(run): \(ms(elapsed)) ms, \(index.socketCount) sockets, \(index.entryCount) entries, \(index.descriptorsRead) fds, \(index.processesScanned) processes")
}
times.sort()
var usage = rusage()
getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
print("peak RSS \(usage.ru_maxrss / 1024) MB")
print("procindex threads=\(threads) best_ms=\(ms(times[0])) median_ms=\(ms(times[times.count / 2]))")
