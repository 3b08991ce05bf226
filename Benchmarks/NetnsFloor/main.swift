// sockctl-netns-floor: the least work a kill by filter over every network namespace needs, timed
// without what a command pays around it (used by scripts/bench kill, netns case).
// Usage: sockctl-netns-floor [--threads N] FILTER
//        sockctl-netns-floor [--threads N] --socketkiller FILTER  (N: SocketKiller parallelism)
//
// Untimed set-up: parse and compile FILTER, find every network namespace (as --all-netns does)
// and open one NETLINK_SOCK_DIAG socket inside each (a socket keeps its namespace for life).
// Timed: N threads (default 2, one per core here) take the namespaces in turn and, on that
// namespace's socket, run the one TCP dump (both families in one walk, the filter as kernel
// bytecode, the same request `sockctl kill -t` sends) and destroy every match by cookie, 128 per
// sendmsg. No process start, no namespace discovery, no setns, no probe, no output: what is left
// is the kernel's walk of the socket table, its filter, the destroys, and reading the replies.
// Prints one line of key=value pairs.
//
// With --socketkiller it times instead what a long-running agent (a CNI agent, the daemon) pays
// for the same kill through the library: one `SocketKiller().kill` with `.all` namespaces and TCP,
// which discovers the namespaces, probes, dumps, destroys and returns every socket's outcome. No
// process start and no argument parsing, everything else included. Prints api_ms=... and counts.
import Glibc
import Kill
import Namespaces
import SockDiag
import SocketFilter

func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func fail(_ message: String) -> Never {
    fputs("sockctl-netns-floor: \(message)\n", stderr)
    exit(2)
}

var args = Array(CommandLine.arguments.dropFirst())
var threadsArgument: Int?
if let i = args.firstIndex(of: "--threads"), i + 1 < args.count, let n = Int(args[i + 1]), n > 0 {
    threadsArgument = n
    args.removeSubrange(i...(i + 1))
}
let threads = threadsArgument ?? 2
var socketKiller = false
if let i = args.firstIndex(of: "--socketkiller") {
    socketKiller = true
    args.remove(at: i)
}
guard args.count == 1 else { fail("usage: sockctl-netns-floor [--threads N] [--socketkiller] FILTER") }

let filter: SocketFilter
do { filter = try SocketFilter.parse(args[0]) } catch { fail("\(error)") }
if socketKiller {
    let start = monotonicNanos()
    let report: KillReport
    do {
        report = try SocketKiller(parallelism: threadsArgument ?? NamespaceRunner.defaultParallelism)
            .kill(KillRequest(filter: filter, protocols: [.tcp], namespaces: .all))
    } catch {
        fail("\(error)")
    }
    let ms = Double(monotonicNanos() - start) / 1e6
    let destroyed = report.results.filter { if case .destroyed = $0.outcome { return true }; return false }.count
    print("api_ms=\(ms) namespaces=\(report.summary.namespaces.count) matched=\(report.summary.matched) destroyed=\(destroyed)")
    exit(0)
}
let t0 = monotonicNanos()
let spaces: [NetworkNamespace]
do { spaces = try NetworkNamespace.discoverAll() } catch { fail("\(error)") }
let t1 = monotonicNanos()
// Kill's default TCP states: everything the destroy lookup can reach (no TIME-WAIT, CLOSE or
// BOUND-INACTIVE); SocketSelection leaves LISTEN out itself when no listener can match.
let states = SocketState.allMask & ~(SocketState.timeWait.mask | SocketState.close.mask | SocketState.boundInactive.mask)

final class Work: @unchecked Sendable {
    let clients: [SockDiagClient]
    var next = 0
    var destroyed = 0, matched = 0, failed = 0
    let lock = POSIXMutex()
    init(_ clients: [SockDiagClient]) { self.clients = clients }
    func claim() -> Int? {
        lock.withLock {
            guard next < clients.count else { return nil }
            next += 1
            return next - 1
        }
    }
    func add(matched m: Int, destroyed d: Int, failed f: Int) {
        lock.withLock { matched += m; destroyed += d; failed += f }
    }
}

var clients: [SockDiagClient] = []
for r in NamespaceRunner.map(spaces, { _ in try SockDiagClient() }) {
    switch r {
    case .success(let c): clients.append(c)
    case .failure(let e): fail("opening a sock_diag socket: \(e)")
    }
}
let work = Work(clients)
let t2 = monotonicNanos()

func worker() {
    while let i = work.claim() {
        let client = work.clients[i]
        var found: [Socket] = []
        do {
            try SocketSelection.collect(kinds: [.tcp], families: [UInt8(AF_INET), UInt8(AF_INET6)], filter: filter,
                                        states: { _ in states }, extensions: [], label: nil, tcpInOneWalk: true,
                                        client: client) { s, _ in found.append(s) }
            let outcomes = try SockDiagClient.destroy(found, on: client.socket, batch: 128)
            var d = 0, f = 0
            for o in outcomes {
                switch o {
                case .destroyed: d += 1
                case .failed: f += 1
                default: break
                }
            }
            work.add(matched: found.count, destroyed: d, failed: f)
        } catch {
            fail("namespace \(spaces[i].label): \(error)")
        }
    }
}

// Threads of our own (the body only touches sockets already bound to their namespaces).
let start = monotonicNanos()
var workers: [POSIXThread] = []
for _ in 0..<threads {
    do { workers.append(try POSIXThread.start(name: "netns-floor", worker)) } catch { fail("\(error)") }
}
for t in workers { t.join() }
let ms = Double(monotonicNanos() - start) / 1e6
print("floor_ms=\(ms) discovery_ms=\(Double(t1 - t0) / 1e6) setup_ms=\(Double(t2 - t1) / 1e6) namespaces=\(spaces.count) threads=\(threads) matched=\(work.matched) destroyed=\(work.destroyed) failed=\(work.failed)")
