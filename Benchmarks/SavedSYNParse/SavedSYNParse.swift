// ordo-one/benchmark suite for the SavedSYN parser: throughput and allocations per SYN.
// Built only when SOCKCTL_BENCHMARKS=1 (see Package.swift); run by `scripts/bench syn`:
//   SOCKCTL_BENCHMARKS=1 swift package --scratch-path .build-bench benchmark --target SavedSYNParse
import Benchmark
import SavedSYN

func hexBytes(_ s: String) -> [UInt8] {
    let c = Array(s.utf8)
    func nib(_ x: UInt8) -> UInt8 { x <= 57 ? x - 48 : (x | 0x20) - 87 }
    return stride(from: 0, to: c.count, by: 2).map { nib(c[$0]) << 4 | nib(c[$0 + 1]) }
}

/// Linux (IPv4, mss*44), Windows-style with EOL padding, IPv4 with options, TFO+MPTCP.
let seeds: [[UInt8]] = [
    hexBytes("4500003c444440004006e1db0a4d00010a4d00029c4613890c5c7fd100000000a002faf073230000020405b40402080a193d70150000000001030307"),
    hexBytes("45000040010140004006251b0a4d00010a4d00029c431389269e0d3800000000b002ffff6a4c0000020405b4010303060101080a075bcd150000000004020000"),
    hexBytes("4600004012344000400610e70a4d00010a4d0002010101009c4b13895d9dc9f900000000a002faf022d30000020405b40402080a2b1f13150000000001030307"),
    hexBytes("45000044345640004006f1c10a4d00010a4d00029c4d13890ed9047600000000c002faf0ee930000020405b40402080a3114f415000000000103030722021e0401810000"),
]

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .throughput, .mallocCountTotal, .instructions],
        scalingFactor: .mega,
        maxDuration: .seconds(3),
        maxIterations: 20
    )
    let db = BuiltinSignatures.database

    // The allocation-free path: parse into SYNHeaders, p0f facts, packed MuonFP, derived facts.
    Benchmark("SYNHeaders+P0fSignature+MuonFP+facts") { benchmark in
        for i in benchmark.scaledIterations {
            let h = seeds[i & 3].withUnsafeBytes { try? SYNHeaders.parse($0) }
            if let h {
                blackHole(P0fSignature(headers: h).quirks)
                blackHole(MuonFP(headers: h).key)
                blackHole(SYNFacts(headers: h).distance)
            }
        }
    }

    // The same with the built-in database match.
    Benchmark("SYNHeaders+P0fSignature+MuonFP+db match") { benchmark in
        for i in benchmark.scaledIterations {
            let h = seeds[i & 3].withUnsafeBytes { try? SYNHeaders.parse($0) }
            if let h {
                blackHole(db.matchIndex(P0fSignature(headers: h)))
                blackHole(MuonFP(headers: h).key)
            }
        }
    }

    // The high-level API: SYNFingerprint (packet arrays), both strings, database match.
    Benchmark("SYNFingerprint+strings+db match", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for i in benchmark.scaledIterations {
            if let fp = try? SYNFingerprint(bytes: seeds[i & 3], database: db) {
                blackHole(fp.signature)
                blackHole(fp.fingerprint)
                blackHole(fp.os)
            }
        }
    }
}
