// syn-bench: throughput of the SavedSYN parser/fingerprints, accept-loop cost of TCP_SAVED_SYN, and a
// seeded mutation fuzzer for the parser. Run by scripts/bench-syn and scripts/fuzz-syn.
//
//   syn-bench parse [SECONDS]          parse + p0f signature + MuonFP per SYN, SYNs/s on one core
//   syn-bench accept [CONNECTIONS]     accept loop on 127.0.0.1 with and without reading the saved SYN
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

let args = Array(CommandLine.arguments.dropFirst())
let mode = args.first ?? "parse"

switch mode {
case "parse":
    let seconds = args.count > 1 ? Double(args[1]) ?? 3 : 3
    let db = BuiltinSignatures.database
    var n = 0, sink = 0
    let start = now()
    var end = start
    while end - start < seconds {
        for _ in 0..<10_000 {
            let b = seeds[n % 4]
            if let p = try? SYNParser.parse(b) {
                let sig = P0fSignature(packet: p)
                let m = MuonFP(tcp: p.tcp)
                sink &+= sig.optionLayout.count &+ m.optionKinds.count &+ Int(sig.quirks.rawValue)
            }
            n += 1
        }
        end = now()
    }
    let rate = Double(n) / (end - start)
    // The same with the strings (raw signature + MuonFP text) and a database match.
    var n2 = 0
    let s2 = now()
    var e2 = s2
    while e2 - s2 < seconds {
        for _ in 0..<10_000 {
            if let fp = try? SYNFingerprint(bytes: seeds[n2 % 4], database: db) {
                sink &+= fp.signature.utf8.count &+ fp.fingerprint.utf8.count &+ (fp.os?.utf8.count ?? 0)
            }
            n2 += 1
        }
        e2 = now()
    }
    let rate2 = Double(n2) / (e2 - s2)
    print("parse+p0f facts+MuonFP: \(Int(rate)) SYNs/s (\(String(format: "%.0f", 1e9 / rate)) ns each)")
    print("parse+strings+db match: \(Int(rate2)) SYNs/s (\(String(format: "%.0f", 1e9 / rate2)) ns each)")
    print("target 5,000,000 SYNs/s: \(rate >= 5e6 ? "met" : "NOT met") for facts, \(rate2 >= 5e6 ? "met" : "NOT met") with strings (sink \(sink % 7))")

case "accept":
    let total = args.count > 1 ? Int(args[1]) ?? 20000 : 20000
    func round(save: Bool) -> Double {
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
        let start = now()
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
                if save, case let .syn(b)? = try? SYNCapture.read(accepted: a) {
                    _ = try? SYNFingerprint(bytes: b)
                }
                var lin = linger(l_onoff: 1, l_linger: 0)
                setsockopt(a, SOL_SOCKET, SO_LINGER, &lin, socklen_t(MemoryLayout<linger>.size))
                close(a)
            }
            for c in clients { close(c) }
            done += batch
        }
        close(l)
        return Double(total) / (now() - start)
    }
    _ = round(save: false)  // warm-up
    var without: [Double] = [], with: [Double] = []
    for _ in 0..<3 { without.append(round(save: false)); with.append(round(save: true)) }
    let a = without.sorted()[1], b = with.sorted()[1]
    print("accept loop (connect+accept+close, \(total) connections, median of 3):")
    print("  without saved SYN: \(Int(a)) conn/s")
    print("  with TCP_SAVE_SYN + read + parse + fingerprint: \(Int(b)) conn/s")
    print(String(format: "  ratio with/without: %.3f (cost %.1f%%; target < 10%%)", b / a, (1 - b / a) * 100))

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
    print("usage: syn-bench parse [SECONDS] | accept [CONNECTIONS] | fuzz SECONDS [SEED]")
    exit(2)
}
