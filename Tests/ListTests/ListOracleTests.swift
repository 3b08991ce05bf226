import Foundation
import TestSupport
import Testing

/// `sockctl list` must report the same sockets as `ss` on the same namespace: inode, state, endpoints.
@Suite struct ListOracleTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("fixture.py").path

    /// ss's view: one key per socket line (`ss -H -n -e` + kind flags).
    static func ssKeys(_ ns: TestNamespace, _ flags: String) -> Set<String> {
        let out = ns.exec(["ss", "-H", "-n", "-e", flags]).stdout
        var keys: Set<String> = []
        for line in out.split(separator: "\n") {
            var t = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            // ss drops the State column when only one state is selected (-u: established only).
            if let first = t.first, Int(first) != nil { t.insert("ESTAB", at: 0) }
            if t.first?.hasPrefix("u_") == true {
                // Netid State Recv-Q Send-Q path ino peer-path peer-ino
                guard t.count >= 8 else { continue }
                keys.insert("\(t[0]) \(t[1]) \(t[4]) \(t[5]) peer:\(t[7])")
            } else {
                guard t.count >= 5 else { continue }
                func strip(_ e: String) -> String {
                    // ss prints a dual-stack (not v6only) wildcard listener as `*`; the address is `::`.
                    if e.hasPrefix("*:") { return "[::]" + e.dropFirst() }
                    guard let pct = e.firstIndex(of: "%"), let colon = e.lastIndex(of: ":") else { return e }
                    return String(e[..<pct]) + String(e[colon...])
                }
                let ino = t.first(where: { $0.hasPrefix("ino:") }).map { String($0.dropFirst(4)) } ?? "0"
                keys.insert("\(t[0]) \(strip(t[3])) \(strip(t[4])) ino:\(ino)")
            }
        }
        return keys
    }

    /// Our view, from `sockctl list --json`.
    static func ourKeys(_ ns: TestNamespace, _ flags: String) throws -> Set<String> {
        let r = sh([sockctlBinary, "list", "--netns", ns.name, "-H", "--json", flags])
        #expect(r.status == 0 || r.status == 1, "sockctl list exited \(r.status)")
        var keys: Set<String> = []
        for o in try jsonLines(r.out) {
            let state = ssStateName[o["state"] as? String ?? ""] ?? "?"
            if o["family"] as? String == "unix" {
                let netid = ["stream": "u_str", "dgram": "u_dgr", "seqpacket": "u_seq"][o["protocol"] as? String ?? ""] ?? "?"
                keys.insert("\(netid) \(state) \(o["path"] as? String ?? "*") \(o["inode"] as? Int ?? -1) peer:\(o["peer"] as? Int ?? 0)")
            } else {
                keys.insert("\(state) \(endpoint(o["src"] as? String, o["sport"] as? Int)) \(endpoint(o["dst"] as? String, o["dport"] as? Int)) ino:\(o["inode"] as? Int ?? -1)")
            }
        }
        return keys
    }

    @Test func sameSocketsAsSS() throws {
        let ns = try TestNamespace("list")
        // A veth pair whose far end has no address: SYNs to 10.30.0.2 go out and are never answered
        // (SYN-SENT). The permanent neighbour entry matters: were the SYN left waiting on ARP, the
        // failed resolution (about 3 s) would report "host unreachable" and end the connect, so a
        // slow run would find no SYN-SENT socket.
        ns.exec(["ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"])
        ns.exec(["ip", "addr", "add", "10.30.0.1/24", "dev", "v0"])
        ns.exec(["ip", "link", "set", "v0", "up"])
        ns.exec(["ip", "link", "set", "v1", "up"])
        ns.exec(["ip", "neigh", "add", "10.30.0.2", "lladdr", "02:00:00:00:30:02", "dev", "v0", "nud", "permanent"])
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent(ns.name).path
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let holder = try Holder(["ip", "netns", "exec", ns.name, "python3", Self.fixture, tmp])
        defer { _ = holder }

        for flags in ["-ta", "-t", "-tl", "-ua", "-u", "-xa", "-x", "-ta4", "-ta6"] {
            let theirs = Self.ssKeys(ns, flags)
            let ours = try Self.ourKeys(ns, flags)
            #expect(ours == theirs, "\(flags): only ours \(ours.subtracting(theirs).sorted()), only ss \(theirs.subtracting(ours).sorted())")
        }
        // The fixture's states are all there, so the comparison above covered them.
        let all = try Self.ourKeys(ns, "-ta")
        for state in ["LISTEN", "ESTAB", "TIME-WAIT", "CLOSE-WAIT", "FIN-WAIT-2", "SYN-SENT"] {
            #expect(all.contains { $0.hasPrefix(state + " ") }, "fixture has no \(state) socket")
        }
        #expect(all.contains { $0.contains("[::ffff:127.0.0.1]") }, "no v4-mapped socket")
    }

    @Test func allNetnsFindsNamedUnnamedAndHost() throws {
        let named = try TestNamespace("alln")
        let holder = try Holder(["ip", "netns", "exec", named.name, "python3", "-c",
            "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1',47001)); s.listen(); print('READY',flush=True); sys.stdin.read()"])
        // An unnamed namespace, held only by a process.
        let unnamed = try Holder(["unshare", "-n", "python3", "-c",
            "import os,socket,sys; os.system('ip link set lo up'); s=socket.socket(); s.bind(('127.0.0.1',47002)); s.listen(); print('READY',flush=True); sys.stdin.read()"])
        let unnamedIno = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(unnamed.pid)/ns/net")
            .split(separator: "[").last!.dropLast()
        defer { _ = holder; _ = unnamed }

        let r = sh([sockctlBinary, "list", "--all-netns", "-tl", "-H", "--json", "sport = :47001 or sport = :47002"])
        #expect(r.status == 0)
        let objs = try jsonLines(r.out)
        let byPort = Dictionary(grouping: objs, by: { $0["sport"] as? Int ?? 0 })
        #expect(byPort[47001]?.map { $0["netns"] as? String } == [named.name])
        #expect(byPort[47002]?.map { $0["netns"] as? String } == ["ino:\(unnamedIno)"])

        // The host's own namespace is found and labelled too: its listening sockets appear once each.
        let host = sh([sockctlBinary, "list", "--all-netns", "-tuxa", "-H", "--json"])
        let labels = Set(try jsonLines(host.out).compactMap { $0["netns"] as? String })
        let hostIno = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net").split(separator: "[").last!.dropLast()
        let hostHasSockets = !(sh(["ss", "-Htuxa"]).out.isEmpty)
        if hostHasSockets {
            #expect(labels.contains("ino:\(hostIno)") || labels.contains { !$0.hasPrefix("sockctl-t-") && !$0.hasPrefix("ino:") },
                    "host namespace missing from \(labels.sorted())")
        }
        #expect(labels.contains(named.name))
    }

    /// A TCP socket that is bound but neither listens nor connects is left out of `-a` (as ss 6.1
    /// leaves it out: asking the kernel for it walks the host-wide bind table) and listed when the
    /// filter names its state.
    @Test func boundInactiveOnlyWhenNamed() throws {
        let ns = try TestNamespace("bound")
        let holder = try Holder(["ip", "netns", "exec", ns.name, "python3", "-c",
            "import socket,sys; b=socket.socket(); b.bind(('127.0.0.1',47010)); l=socket.socket(); l.bind(('127.0.0.1',47011)); l.listen(); print('READY',flush=True); sys.stdin.read()"])
        defer { _ = holder }

        let all = sh([sockctlBinary, "list", "--netns", ns.name, "-ta", "-H", "--json"])
        #expect(all.status == 0)
        #expect(try jsonLines(all.out).compactMap { $0["sport"] as? Int } == [47011])
        #expect(Self.ssKeys(ns, "-ta") == (try Self.ourKeys(ns, "-ta")))

        let named = sh([sockctlBinary, "list", "--netns", ns.name, "-t", "-H", "--json", "state bound-inactive"])
        #expect(named.status == 0)
        let objs = try jsonLines(named.out)
        #expect(objs.compactMap { $0["sport"] as? Int } == [47010])
        #expect(objs.first?["state"] as? String == "closed")
    }

    @Test func errorsAreOneLineWithExitStatus() throws {
        let missing = sh([sockctlBinary, "list", "--netns", "sockctl-no-such-ns"])
        #expect(missing.status == 2)
        let bad = sh([sockctlBinary, "list", "-t", "dport = :80 and bogus"])
        #expect(bad.status == 2)
        let pid = sh([sockctlBinary, "list", "--netns", "999999999"])
        #expect(pid.status == 2)
    }
}
