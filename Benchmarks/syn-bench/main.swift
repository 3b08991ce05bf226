// syn-bench: throughput of the SavedSYN parser/fingerprints, accept-loop cost of TCP_SAVED_SYN, and a
// seeded mutation fuzzer for the parser. Run by scripts/bench-syn and scripts/fuzz-syn.
//
//   syn-bench parse [SECONDS]          parse + p0f signature + MuonFP per SYN, SYNs/s on one core
//   syn-bench parse-count N            N fast-path parses (count allocations under valgrind)
//   syn-bench make-pcap FILE N         a raw-IP pcap of N SYNs (for p0f -r side by side)
//   syn-bench pcap FILE [DB]           our per-SYN cost on the SYNs of that pcap
//   syn-bench accept [CONNECTIONS] [ROUNDS]  accept loop on 127.0.0.1 with and without reading the saved SYN
//   syn-bench fuzz SECONDS [SEED]      mutate seed SYNs, parse and fingerprint each; any crash aborts
import SavedSYN

#if canImport(Glibc)
import Glibc
#endif

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func hex(_ s: String) -> [UInt8] {
    let c = Array(s.filter { !$0.isWhitespace })
    return stride(from: 0, to: c.count, by: 2).map { UInt8(String(c[$0...$0 + 1]), radix: 16)! }
}

let seeds: [[UInt8]] = [
    hex("4500003c444440004006e1db0a4d00010a4d00029c4613890c5c7fd100000000a002faf073230000020405b40402080a193d70150000000001030307"),
    hex("45000040010140004006251b0a4d00010a4d00029c431389269e0d3800000000b002ffff6a4c0000020405b4010303060101080a075bcd150000000004020000"),
    hex("4600004012344000400610e70a4d00010a4d0002010101009c4b13895d9dc9f900000000a002faf022d30000020405b40402080a2b1f13150000000001030307"),
    hex("45000044345640004006f1c10a4d00010a4d00029c4d13890ed9047600000000c002faf0ee930000020405b40402080a3114f415000000000103030722021e0401810000"),
    hex("6001234500303c40fd770000000000000000000000000001fd77000000000000000000000000000206000104000000009c50138a36f675cd00000000a002fd20004d0000020405a00402080a3d00b6150000000001030307"),
    hex("4500003023454000400602e70a4d00010a4d00029c4c13899531985e000000007002721004ad0000020405b401631e00"),
]

/// CPU time of this thread: on a shared machine it counts only the time this core spent on us.
func cpuNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Runs `body(n)` in batches of 10,000 for `seconds` of wall time; returns calls per second of thread
/// CPU time (one core) and the share of wall time the thread had the CPU.
@inline(never)
func timed(_ seconds: Double, _ body: (Int) -> Void) -> Double {
    var n = 0
    let start = now(), cpuStart = cpuNow()
    var end = start
    while end - start < seconds {
        for _ in 0..<10_000 {
            body(n)
            n &+= 1
        }
        end = now()
    }
    let cpu = cpuNow() - cpuStart
    cpuShare = cpu / (end - start)
    return Double(n) / cpu
}
nonisolated(unsafe) var cpuShare = 1.0

let args = Array(CommandLine.arguments.dropFirst())
let mode = args.first ?? "parse"

switch mode {
case "parse":
    let seconds = args.count > 1 ? Double(args[1]) ?? 3 : 3
    let db = BuiltinSignatures.database
    var sink = 0
    // 1. The allocation-free path: SYNHeaders + p0f facts + MuonFP (packed) + derived facts.
    let rate = timed(seconds) { n in
        let h = seeds[n & 3].withUnsafeBytes { try? SYNHeaders.parse($0) }
        if let h {
            let sig = P0fSignature(headers: h)
            let m = MuonFP(headers: h)
            let f = SYNFacts(headers: h)
            sink &+= sig.optionLayout.count &+ Int(truncatingIfNeeded: m.key) &+ Int(sig.quirks.rawValue) &+ f.distance
        }
    }
    // 2. The same plus the database match (still no allocation).
    let rateDB = timed(seconds) { n in
        let h = seeds[n & 3].withUnsafeBytes { try? SYNHeaders.parse($0) }
        if let h {
            let sig = P0fSignature(headers: h)
            let m = MuonFP(headers: h)
            sink &+= Int(truncatingIfNeeded: m.key) &+ (db.matchIndex(sig)?.index ?? -1)
        }
    }
    // 3. The high-level API: SYNFingerprint (arrays), raw signature and MuonFP text, database match.
    let rate2 = timed(seconds) { n in
        if let fp = try? SYNFingerprint(bytes: seeds[n & 3], database: db) {
            sink &+= fp.signature.utf8.count &+ fp.fingerprint.utf8.count &+ (fp.os?.utf8.count ?? 0)
        }
    }
    func line(_ what: String, _ r: Double) -> String {
        "\(what): \(String(format: "%.2f", r / 1e6)) M SYNs/s (\(String(format: "%.0f", 1e9 / r)) ns each)"
    }
    print("(rates per second of this thread's CPU time on one core; it had the CPU \(Int(cpuShare * 100))% of the wall time)")
    print(line("parse+p0f facts+MuonFP+facts (no allocation)", rate))
    print(line("  ... + built-in db match (no allocation)    ", rateDB))
    print(line("SYNFingerprint: packet arrays+strings+db     ", rate2))
    print("target 5,000,000 SYNs/s: \(rate >= 5e6 ? "met" : "NOT met") for parse+fingerprint, \(rateDB >= 5e6 ? "met" : "NOT met") with db match (sink \(sink % 7))")

case "parse-count":
    // A fixed number of fast-path parses (for counting allocations under valgrind).
    let n = args.count > 1 ? Int(args[1]) ?? 100_000 : 100_000
    let db = BuiltinSignatures.database
    var sink = 0
    for i in 0..<n {
        let h = seeds[i & 3].withUnsafeBytes { try? SYNHeaders.parse($0) }
        if let h {
            let sig = P0fSignature(headers: h)
            sink &+= Int(truncatingIfNeeded: MuonFP(headers: h).key) &+ (db.matchIndex(sig)?.index ?? -1)
        }
    }
    print("parsed \(n) (sink \(sink % 7))")

case "make-pcap":
    // A raw-IP pcap (linktype 101) of N SYNs from the seeds, each from its own source port.
    guard args.count > 2, let n = Int(args[2]) else { print("usage: syn-bench make-pcap FILE N"); exit(2) }
    var d: [UInt8] = []
    func le32(_ v: UInt32) { d += [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)] }
    func le16(_ v: UInt16) { d += [UInt8(v & 0xff), UInt8(v >> 8)] }
    le32(0xa1b2c3d4); le16(2); le16(4); le32(0); le32(0); le32(65535); le32(101)
    for i in 0..<n {
        var p = seeds[i & 3]
        let ipLen = Int(p[0] & 0x0f) * 4
        let port = UInt16(1024 + (i / 4) % 60000)
        p[ipLen] = UInt8(port >> 8); p[ipLen + 1] = UInt8(port & 0xff)
        p[15] = UInt8(truncatingIfNeeded: i / 240_000)  // a new source address every 60,000 ports
        le32(1_700_000_000 + UInt32(i / 1_000_000)); le32(UInt32(i % 1_000_000)); le32(UInt32(p.count)); le32(UInt32(p.count))
        d += p
    }
    guard let f = fopen(args[1], "w") else { print("cannot write \(args[1])"); exit(1) }
    _ = d.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
    fclose(f)
    print("wrote \(n) SYNs to \(args[1])")

case "pcap":
    // Our per-packet cost on the SYNs of a raw-IP pcap, read into memory first: parse + raw signature
    // text + MuonFP text + db match (what p0f does per SYN before printing).
    guard args.count > 1, let f = fopen(args[1], "r") else { print("usage: syn-bench pcap FILE [DB]"); exit(2) }
    var file: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true { let r = fread(&chunk, 1, chunk.count, f); if r <= 0 { break }; file += chunk[0..<r] }
    fclose(f)
    var packets: [[UInt8]] = []
    var at = 24
    while at + 16 <= file.count {
        let len = Int(file[at + 8]) | Int(file[at + 9]) << 8 | Int(file[at + 10]) << 16 | Int(file[at + 11]) << 24
        at += 16
        guard at + len <= file.count else { break }
        packets.append(Array(file[at..<(at + len)]))
        at += len
    }
    var db = BuiltinSignatures.database
    if args.count > 2 { db = db.merged(with: try! P0fDatabase(contentsOf: args[2])) }
    var sink = 0
    // Thread CPU time, not wall time: the machine may be shared; p0f is timed the same way (user+sys).
    let start = cpuNow()
    for p in packets {
        if let fp = try? SYNFingerprint(bytes: p, database: db) {
            sink &+= fp.signature.utf8.count &+ fp.fingerprint.utf8.count &+ (fp.os?.utf8.count ?? 0)
        }
    }
    let t = cpuNow() - start
    let start2 = cpuNow()
    for p in packets {
        let h = p.withUnsafeBytes { try? SYNHeaders.parse($0) }
        if let h { sink &+= db.matchIndex(P0fSignature(headers: h))?.index ?? -1 }
    }
    let t2 = cpuNow() - start2
    print(String(format: "sockctl SYNFingerprint (packet, strings, db of %d): %d SYNs in %.3f s CPU = %.0f ns/SYN", db.entries.count, packets.count, t, t / Double(packets.count) * 1e9))
    print(String(format: "sockctl fast path (SYNHeaders, p0f sig, db match):  %d SYNs in %.3f s CPU = %.0f ns/SYN (sink %d)", packets.count, t2, t2 / Double(packets.count) * 1e9, sink % 7))

case "accept":
    let total = args.count > 1 ? Int(args[1]) ?? 20000 : 20000
    /// Connections per second of wall time and per second of this thread's CPU time (user + system;
    /// loopback delivery runs in this thread's softirq context), for a shared machine.
    enum Mode { case plain, fast, full }
    let db = BuiltinSignatures.database
    var sink = 0
    func round(_ mode: Mode) -> (wall: Double, cpu: Double) {
        let save = mode != .plain
        let l = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, 4)
        if save { try! SYNCapture.enable(listener: l) }
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_addr.s_addr = UInt32(0x7f000001).bigEndian
        _ = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(l, $0, 16) } }
        listen(l, 4096)
        var len = socklen_t(16)
        _ = withUnsafeMutablePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(l, $0, &len) } }
        let start = now(), cpuStart = cpuNow()
        var done = 0
        while done < total {
            let batch = min(256, total - done)
            var clients: [Int32] = []
            for _ in 0..<batch {
                let c = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                _ = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(c, $0, 16) } }
                clients.append(c)
            }
            for _ in 0..<batch {
                let a = accept(l, nil, nil)
                switch mode {
                case .plain: break
                case .fast:
                    // Allocation-free: stack buffer, SYNHeaders, p0f signature, MuonFP, db match.
                    if case let .headers(h)? = try? SYNCapture.readHeaders(accepted: a) {
                        sink &+= (db.matchIndex(P0fSignature(headers: h))?.index ?? -1) &+ Int(truncatingIfNeeded: MuonFP(headers: h).key)
                    }
                case .full:
                    // The high-level API: byte array, SYNFingerprint with strings and db match.
                    if case let .syn(b)? = try? SYNCapture.read(accepted: a), let fp = try? SYNFingerprint(bytes: b, database: db) {
                        sink &+= fp.signature.utf8.count &+ fp.fingerprint.utf8.count
                    }
                }
                var lin = linger(l_onoff: 1, l_linger: 0)
                setsockopt(a, SOL_SOCKET, SO_LINGER, &lin, socklen_t(MemoryLayout<linger>.size))
                close(a)
            }
            for c in clients { close(c) }
            done += batch
        }
        close(l)
        return (Double(total) / (now() - start), Double(total) / (cpuNow() - cpuStart))
    }
    _ = round(.plain)  // warm-up
    var without: [(wall: Double, cpu: Double)] = [], fast: [(wall: Double, cpu: Double)] = [], full: [(wall: Double, cpu: Double)] = []
    let rounds = args.count > 2 ? Int(args[2]) ?? 9 : 9
    for _ in 0..<rounds {
        without.append(round(.plain))
        fast.append(round(.fast))
        full.append(round(.full))
    }
    func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
    let aw = median(without.map(\.wall)), ac = median(without.map(\.cpu))
    print("accept loop (connect+accept+close, \(total) connections, one thread, median of \(rounds) alternating rounds; sink \(sink % 7)):")
    print("  without saved SYN:                                  \(Int(aw)) conn/s wall, \(Int(ac)) conn per CPU-second")
    for (name, r) in [("SYNCapture.readHeaders + p0f sig + MuonFP + db (fast)", fast),
                      ("SYNCapture.read + SYNFingerprint + strings (full)", full)] {
        let bw = median(r.map(\.wall)), bc = median(r.map(\.cpu))
        print("  with TCP_SAVE_SYN, \(name): \(Int(bw)) conn/s wall, \(Int(bc)) conn per CPU-second")
        print(String(format: "    cost of reading the SYN: %.1f%% by CPU time, %.1f%% by wall time (target < 10%%)",
                     (1 - bc / ac) * 100, (1 - bw / aw) * 100))
    }

case "fuzz":
    let seconds = args.count > 1 ? Double(args[1]) ?? 60 : 60
    var rng = UInt64(args.count > 2 ? UInt64(args[2]) ?? 1 : 1)
    func next() -> UInt64 { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng }
    let db = BuiltinSignatures.database
    var execs = 0, parsed = 0, errors = 0
    let start = now()
    var last = start
    while now() - start < seconds {
        for _ in 0..<1000 {
            var b = seeds[Int(next() % UInt64(seeds.count))]
            let muts = 1 + Int(next() % 6)
            for _ in 0..<muts {
                switch next() % 6 {
                case 0: if !b.isEmpty { b[Int(next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: next()) }
                case 1: if !b.isEmpty { b.removeLast(Int(next() % UInt64(b.count + 1))) }
                case 2: for _ in 0..<Int(next() % 64) { b.append(UInt8(truncatingIfNeeded: next())) }
                case 3: if b.count > 40 { b[Int(next() % 40)] = [0, 1, 2, 3, 5, 8, 30, 34, 254, 0xff][Int(next() % 10)] }
                case 4: if b.count > 2 { b[0] = [0x40, 0x45, 0x4f, 0x60, 0x41][Int(next() % 5)] }
                default: if b.count > 33 { b[32] = UInt8(truncatingIfNeeded: next()) & 0xf1 }
                }
            }
            let link: SYNParser.LinkLayer = next() % 8 == 0 ? .ethernet : .none
            do {
                let fp = try SYNFingerprint(bytes: b, linkLayer: link, database: db)
                parsed += 1
                precondition(!fp.signature.isEmpty && !fp.fingerprint.isEmpty)
                precondition(fp.packet.ip.headerLength + fp.packet.tcp.headerLength + (fp.packet.macHeader?.count ?? 0) <= b.count)
                precondition(fp.headers.tcpOffset + fp.headers.tcpHeaderLength <= b.count)
            } catch {
                errors += 1
                precondition(error.offset >= 0 && error.offset <= b.count, "offset out of range: \(error)")
                _ = error.description
            }
            execs += 1
        }
        if now() - last > 60 {
            last = now()
            print("fuzz: \(execs) executions, \(parsed) parsed, \(errors) errors, \(Int(last - start)) s")
        }
    }
    print("fuzz done: \(execs) executions in \(Int(now() - start)) s, \(parsed) parsed, \(errors) rejected with an error, 0 crashes")

default:
    print("usage: syn-bench parse [SECONDS] | parse-count N | make-pcap FILE N | pcap FILE [DB] | accept [CONNECTIONS] | fuzz SECONDS [SEED]")
    exit(2)
}
