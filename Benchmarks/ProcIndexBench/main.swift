// Times ProcessIndex.build() on this host: `sockctl-bench-procindex [--threads N] [--runs R]`.
// Prints one line per run and a summary: best and median milliseconds, sockets and descriptors seen.
#if canImport(Glibc)
import Glibc
#endif
import Namespaces

var threads = 1
var runs = 5
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--threads": threads = Int(args.popFirst() ?? "") ?? 1
    case "--runs": runs = Int(args.popFirst() ?? "") ?? 5
    default:
        fputs("usage: sockctl-bench-procindex [--threads N] [--runs R]\n", stderr)
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
for run in 1...max(1, runs) {
    let t0 = now()
    let index = try ProcessIndex.build(threads: threads)
    let elapsed = now() - t0
    times.append(elapsed)
    print("run \(run): \(ms(elapsed)) ms, \(index.socketCount) sockets, \(index.entryCount) entries, \(index.descriptorsRead) fds, \(index.processesScanned) processes")
}
times.sort()
print("procindex threads=\(threads) best_ms=\(ms(times[0])) median_ms=\(ms(times[times.count / 2]))")
