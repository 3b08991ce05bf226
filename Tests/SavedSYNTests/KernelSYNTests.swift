import Foundation
@testable import SavedSYN
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Real SYNs through the real kernel, in namespaces the tests create: crafted by scapy from a client
/// namespace (stacks our kernel would never imitate), accepted in a server namespace, read back with
/// TCP_SAVED_SYN, and compared with what p0f 3.09b prints for the same bytes.
@Suite(.serialized) struct KernelSYNTests {
    /// p0f's labels for the crafted profiles with /etc/p0f/p0f.fp ("???" = no match; nil = p0f skips
    /// the packet, as it does IPv6 with extension headers), and ours with the built-in database.
    static let expected: [String: (p0f: String?, builtin: String)] = [
        "windows10": ("Windows NT kernel", "Windows 10 or 11"),
        "windows11-65535": ("Windows NT kernel 5.x", "Windows 10 or 11"),
        "macos": ("Mac OS X", "macOS 11 or newer (or iOS)"),
        "macos-ecn": ("Mac OS X", "macOS 11 or newer (or iOS)"),
        "ios": ("iOS iPhone or iPad", "???"),
        "linux": ("Linux 2.2.x-3.x", "Linux 4.x-6.x"),
        "freebsd": ("FreeBSD 9.x or newer", "???"),
        "nmap-syn-scan": ("NMap SYN scan", "???"),
        "nmap-os-probe": ("NMap OS detection", "???"),
        "ack-bit24-clear": ("Linux 2.2.x-3.x", "Linux 4.x-6.x"),
        "ipv4-options": ("???", "???"),
        "bad-option": ("???", "???"),
        "tfo-mptcp": ("???", "???"),
        "ipv6-linux": ("???", "Linux 4.x-6.x (IPv6)"),
        "ipv6-windows": ("Windows NT kernel", "Windows 10 or 11 (IPv6)"),
        "ipv6-ext-header": (nil, "???"),
    ]

    @Test func craftedSYNsMatchP0f() throws {
        let net = try VethPair()
        defer { net.delete() }
        try net.dropClientRSTs()
        let (l4, p4) = try net.server.run { try makeListener(family: AF_INET, address: "10.77.0.2") }
        let (l6, p6) = try net.server.run { try makeListener(family: AF_INET6, address: "fd77::2") }
        defer { close(l4); close(l6) }

        let (st, out, err) = try run([
            "ip", "netns", "exec", net.client.name, "/usr/bin/python3", testsDirectory + "/craft_syn.py",
            net.clientIf, VethPair.clientMAC, VethPair.serverMAC, "10.77.0.1", "10.77.0.2", String(p4),
            "fd77::1", "fd77::2", String(p6), "40001",
        ])
        #expect(st == 0, "scapy: \(err)")
        var names: [Int: String] = [:]
        for line in out.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count == 3 else { continue }
            #expect(f[2] == "ok", "handshake for \(f[0]) did not complete")
            names[Int(f[1])!] = String(f[0])
        }
        #expect(names.count == Self.expected.count)

        // Accept everything and read each saved SYN.
        var syns: [Int: [UInt8]] = [:]
        for _ in 0..<names.count {
            var fds = [pollfd(fd: l4, events: Int16(POLLIN), revents: 0), pollfd(fd: l6, events: Int16(POLLIN), revents: 0)]
            guard poll(&fds, 2, 5000) > 0 else { break }
            for p in fds where p.revents & Int16(POLLIN) != 0 {
                let c = accept(p.fd, nil, nil)
                guard c >= 0 else { continue }
                defer { close(c) }
                guard case let .syn(bytes) = try SYNCapture.read(accepted: c) else {
                    Issue.record("no saved SYN on an accepted connection")
                    continue
                }
                let fp = try SYNFingerprint(bytes: bytes)
                syns[Int(fp.packet.tcp.sourcePort)] = bytes
                if syns.count == names.count { break }
            }
        }
        #expect(syns.count == names.count)

        // p0f reads the same bytes from a raw-IP pcap.
        let ports = syns.keys.sorted()
        let pcap = NSTemporaryDirectory() + uniqueName("pcap") + ".pcap"
        defer { unlink(pcap); unlink(pcap + ".log") }
        try writeRawIPPcap(ports.map { syns[$0]! }, to: pcap)
        let p0f = try runP0f(pcap: pcap)
        let p0fDB = try P0fDatabase(contentsOf: "/etc/p0f/p0f.fp")

        for port in ports {
            let name = names[port] ?? "?"
            let ours = try SYNFingerprint(bytes: syns[port]!, database: p0fDB)
            let builtin = try SYNFingerprint(bytes: syns[port]!, database: BuiltinSignatures.database)
            guard let exp = Self.expected[name] else { Issue.record("unexpected profile \(name)"); continue }
            #expect(ourLabel(builtin) == exp.builtin, "\(name): built-in database")
            if let p0fLabel = exp.p0f {
                guard let obs = p0f[port] else { Issue.record("\(name): p0f printed nothing"); continue }
                #expect(ours.signature == obs.rawSig, "\(name): raw signature")
                #expect(ourLabel(ours) == obs.label, "\(name): OS label")
                #expect(obs.label == p0fLabel, "\(name): p0f's label is not the one this test expects")
                #expect((ours.match?.entry.isApplication ?? false) == obs.isApp, "\(name): os vs app")
                if let m = ours.match, !m.entry.badTTL {
                    #expect(String(m.distance) == obs.dist, "\(name): distance")
                }
                #expect(obs.params.contains("fuzzy") == (ours.match?.fuzzy ?? false), "\(name): fuzzy")
            } else {
                #expect(p0f[port] == nil, "\(name): p0f skips IPv6 with extension headers")
            }
        }

        // Spot checks of what the parser saw, beyond p0f.
        let byName = Dictionary(uniqueKeysWithValues: ports.map { (names[$0] ?? "?", try! SYNFingerprint(bytes: syns[$0]!)) })
        let ext = try #require(byName["ipv6-ext-header"])
        guard case let .v6(h6) = ext.packet.ip else { Issue.record("not IPv6"); return }
        #expect(h6.extensionHeaders.map(\.type) == [60])
        #expect(h6.flowLabel == 0x12345)
        #expect(ext.signature == "6:64+0:8:1440:mss*45,7:mss,sok,ts,nop,ws:flow:0")
        let opts = try #require(byName["ipv4-options"])
        guard case let .v4(h4) = opts.packet.ip else { Issue.record("not IPv4"); return }
        #expect(h4.options.map(\.kind) == [1, 1, 1, 0])
        let tfo = try #require(byName["tfo-mptcp"])
        #expect(tfo.facts.fastOpen && tfo.facts.mptcp)
        #expect(tfo.fingerprint == "64240:2-4-8-1-3-34-30-0:1460:7")
        let ecn = try #require(byName["macos-ecn"])
        #expect(ecn.facts.ecnRequested)
        #expect(ecn.fingerprint == "65535:2-1-3-1-1-8-4-0:1460:6")
        let bad = try #require(byName["bad-option"])
        #expect(bad.packet.tcp.optionError?.optionKind == 99)
        #expect(bad.packet.tcp.optionError?.offset == 20 + 20 + 5)
        let nmap = try #require(byName["nmap-syn-scan"])
        #expect(nmap.facts.initialTTL == 64 && nmap.facts.distance == 17)
        #expect(nmap.fingerprint == "1024:2:1460:")
    }

    /// Our own kernel's SYNs over a 1500-MTU veth (the "measured" entries of the built-in database).
    @Test func kernelSYNMatchesBuiltinDatabase() throws {
        let net = try VethPair()
        defer { net.delete() }
        let (l4, p4) = try net.server.run { try makeListener(family: AF_INET, address: "10.77.0.2") }
        let (l6, p6) = try net.server.run { try makeListener(family: AF_INET6, address: "fd77::2") }
        defer { close(l4); close(l6) }
        let c4 = try net.client.run { try connectTo(family: AF_INET, address: "10.77.0.2", port: p4) }
        let c6 = try net.client.run { try connectTo(family: AF_INET6, address: "fd77::2", port: p6) }
        defer { close(c4); close(c6) }
        var syns: [[UInt8]] = []
        for l in [l4, l6] {
            let a = try acceptWithin(l)
            defer { close(a) }
            guard case let .syn(b) = try SYNCapture.read(accepted: a) else { Issue.record("no SYN"); continue }
            syns.append(b)
        }
        let v4 = try SYNFingerprint(bytes: syns[0], database: BuiltinSignatures.database)
        let v6 = try SYNFingerprint(bytes: syns[1], database: BuiltinSignatures.database)
        #expect(v4.os == "Linux 4.x-6.x", "\(v4.signature)")
        #expect(v6.os == "Linux 4.x-6.x (IPv6)", "\(v6.signature)")
        #expect(v4.signature.hasPrefix("4:64+0:0:1460:mss*44,"))
        #expect(v4.fingerprint.hasPrefix("64240:2-4-8-1-3:1460:"))
        // p0f agrees on the signature.
        let pcap = NSTemporaryDirectory() + uniqueName("pcap") + ".pcap"
        defer { unlink(pcap); unlink(pcap + ".log") }
        try writeRawIPPcap(syns, to: pcap)
        let obs = try runP0f(pcap: pcap)
        let p0fDB = try P0fDatabase(contentsOf: "/etc/p0f/p0f.fp")
        for b in syns {
            let fp = try SYNFingerprint(bytes: b, database: p0fDB)
            let o = try #require(obs[Int(fp.packet.tcp.sourcePort)])
            #expect(fp.signature == o.rawSig)
            #expect(ourLabel(fp) == o.label)
        }
    }

    @Test func secondReadIsEmptyAndSmallBufferGrows() throws {
        let ns = try TestNetns("lo")
        defer { ns.delete() }
        let (l, port) = try ns.run { try makeListener(family: AF_INET, address: "127.0.0.1") }
        defer { close(l) }
        let c1 = try ns.run { try connectTo(family: AF_INET, address: "127.0.0.1", port: port) }
        let c2 = try ns.run { try connectTo(family: AF_INET, address: "127.0.0.1", port: port) }
        defer { close(c1); close(c2) }
        let a1 = try acceptWithin(l)
        let a2 = try acceptWithin(l)
        defer { close(a1); close(a2) }

        // A buffer of 8 bytes: the kernel answers EINVAL with the length; the read grows and succeeds.
        guard case let .syn(grown) = try SYNCapture.read(accepted: a1, initialBufferSize: 8) else {
            Issue.record("no SYN with a small buffer"); return
        }
        #expect(grown.count == 60)  // 20 IPv4 + 40 TCP (mss, sok, ts, nop, ws)
        let fp = try SYNFingerprint(bytes: grown)
        #expect(fp.packet.tcp.flags == .syn)
        #expect(fp.os == nil)
        // Read once: the second read is "no SYN".
        #expect(try SYNCapture.read(accepted: a1) == .noSYN)
        // The other connection, read with the default buffer, has the same layout.
        guard case let .syn(normal) = try SYNCapture.read(accepted: a2) else { Issue.record("no SYN"); return }
        #expect(try SYNFingerprint(bytes: normal).p0f.optionLayout == fp.p0f.optionLayout)
        #expect(try SYNFingerprint(bytes: normal, database: BuiltinSignatures.database).os == "Linux 4.x-6.x (loopback)")

        // The allocation-free read: stack buffer straight into SYNHeaders; then "no SYN" as well.
        let c3 = try ns.run { try connectTo(family: AF_INET, address: "127.0.0.1", port: port) }
        defer { close(c3) }
        let a3 = try acceptWithin(l)
        defer { close(a3) }
        guard case let .headers(h) = try SYNCapture.readHeaders(accepted: a3) else { Issue.record("no headers"); return }
        #expect(h.sourcePort == localPort(c3) && h.destinationPort == port && h.flags == .syn)
        #expect(P0fSignature(headers: h).optionLayout == fp.p0f.optionLayout)
        #expect(try SYNCapture.readHeaders(accepted: a3) == .noSYN)
    }

    @Test func macHeaderModeAndNoSaveSYN() throws {
        let ns = try TestNetns("mac")
        defer { ns.delete() }
        let (l, port) = try ns.run { try makeListener(family: AF_INET6, address: "::1", saveSYN: .withMACHeader) }
        let (plain, plainPort) = try ns.run { try makeListener(family: AF_INET, address: "127.0.0.1", saveSYN: nil) }
        defer { close(l); close(plain) }
        let c = try ns.run { try connectTo(family: AF_INET6, address: "::1", port: port) }
        let c2 = try ns.run { try connectTo(family: AF_INET, address: "127.0.0.1", port: plainPort) }
        defer { close(c); close(c2) }
        let a = try acceptWithin(l)
        let a2 = try acceptWithin(plain)
        defer { close(a); close(a2) }
        guard case let .syn(b) = try SYNCapture.read(accepted: a) else { Issue.record("no SYN"); return }
        let fp = try SYNFingerprint(bytes: b, linkLayer: .ethernet)
        #expect(fp.packet.macHeader?.count == 14)
        #expect(fp.packet.macHeader?.suffix(2) == [0x86, 0xdd])
        #expect(fp.packet.ip.sourceString == "::1")
        #expect(fp.signature.hasPrefix("6:64+0:0:"))
        // Without TCP_SAVE_SYN on the listener: no SYN, not an error.
        #expect(try SYNCapture.read(accepted: a2) == .noSYN)
    }

    @Test func synCookiesMeanNoSavedSYN() throws {
        let ns = try TestNetns("cookie")
        defer { ns.delete() }
        try ns.exec("sysctl", "-q", "-w", "net.ipv4.tcp_syncookies=2")
        let (l, port) = try ns.run { try makeListener(family: AF_INET, address: "127.0.0.1") }
        defer { close(l) }
        let c = try ns.run { try connectTo(family: AF_INET, address: "127.0.0.1", port: port) }
        defer { close(c) }
        let a = try acceptWithin(l)
        defer { close(a) }
        #expect(try SYNCapture.read(accepted: a) == .noSYN)
    }

    @Test func mptcpListenerRefusesWithClearError() throws {
        let ns = try TestNetns("mptcp")
        defer { ns.delete() }
        let result: Result<Void, SYNCapture.Error>? = try ns.run { () -> Result<Void, SYNCapture.Error>? in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 262 /* IPPROTO_MPTCP */)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            do { try SYNCapture.enable(listener: fd) } catch let e as SYNCapture.Error { return .failure(e) }
            return .success(())
        }
        // This kernel has MPTCP (net.mptcp.enabled=1); on one without, socket() fails and there is
        // nothing to check.
        let r = try #require(result, "MPTCP sockets are not available in this kernel")
        guard case let .failure(e) = r else { Issue.record("TCP_SAVE_SYN accepted on an MPTCP socket"); return }
        #expect(e.errno == ENOPROTOOPT)
        #expect(e.description.contains("MPTCP"))
        #expect(e.description.contains("setsockopt(TCP_SAVE_SYN)"))
    }
}
