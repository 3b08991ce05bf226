// libFuzzer target for the SavedSYN parser, the p0f signature, MuonFP and the database matcher.
// Built by scripts/fuzz-syn with `swiftc -sanitize=fuzzer,address -parse-as-library` together with
// the SavedSYN sources it needs (the YAML policy is left out: it needs Yams and is not on this path).
//
// Besides "no crash" (ASan catches out-of-bounds reads in the unsafe-buffer parser), each input is
// checked against properties that must hold for any bytes:
// - the fast path and the high-level SYNFingerprint agree, and every offset stays in the buffer;
// - an error's offset lies inside the buffer and its text names it;
// - the p0f raw signature, read back as a p0f.fp `sig =` line, loads and matches itself exactly
//   (when p0f's grammar can hold it: a TTL guess within 35 hops, a TTL above 0, and at most 255
//   bytes of IP options; only IPv6 extension headers, which p0f never fingerprints, go past 255);
// - the MuonFP text, read back as a MuonFP pattern, matches the fingerprint it came from.
// The first input byte picks the link layer (bit 0) so the Ethernet path is covered too.

let fuzzDatabase = BuiltinSignatures.database

@_cdecl("LLVMFuzzerTestOneInput")
public func savedSYNFuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let link: SYNParser.LinkLayer = data[0] & 1 == 1 ? .ethernet : .none
    let body = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    checkSYN(Array(body), link: link)
    return 0
}

func fail(_ what: String, _ bytes: [UInt8]) -> Never {
    let hex = bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    fatalError("\(what) for input \(hex)")
}

func checkSYN(_ bytes: [UInt8], link: SYNParser.LinkLayer) {
    let fast: SYNHeaders
    do {
        fast = try SYNHeaders.parse(bytes, linkLayer: link)
    } catch {
        if error.offset < 0 || error.offset > bytes.count { fail("error offset \(error.offset) outside the buffer: \(error)", bytes) }
        if !error.description.contains("byte \(error.offset)") { fail("error text without its offset: \(error)", bytes) }
        // The array entry point must reject it the same way.
        do {
            _ = try SYNFingerprint(bytes: bytes, linkLayer: link, database: fuzzDatabase)
            fail("SYNFingerprint accepted what SYNHeaders rejected", bytes)
        } catch let e2 {
            if e2 != error { fail("two errors for one input: \(error) / \(e2)", bytes) }
        }
        return
    }
    let end = fast.tcpOffset + fast.tcpHeaderLength
    if end > bytes.count { fail("headers end at \(end) past \(bytes.count)", bytes) }
    let fp: SYNFingerprint
    do {
        fp = try SYNFingerprint(bytes: bytes, linkLayer: link, database: fuzzDatabase)
    } catch {
        fail("SYNFingerprint rejected what SYNHeaders accepted: \(error)", bytes)
    }
    if fp.headers != fast { fail("two parses differ", bytes) }
    if fp.packet.ip.headerLength != fast.networkHeaderLength || fp.packet.tcp.headerLength != fast.tcpHeaderLength {
        fail("packet view lengths differ from the headers", bytes)
    }
    if fp.packet.tcp.options.count != fast.optionKinds.count { fail("option count differs", bytes) }
    if !fp.packet.tcp.options.map(\.kind).elementsEqual(fast.optionKinds) { fail("option kinds differ", bytes) }
    if fp.packet.tcp.mss != fast.mss || fp.packet.tcp.windowScale != fast.windowScale { fail("mss/wscale differ", bytes) }

    // MuonFP text -> pattern -> matches itself.
    let muon = fp.fingerprint
    do {
        let pattern = try MuonFPPattern(muon)
        if !pattern.matches(fp.muonFP) { fail("MuonFP \(muon) does not match its own pattern", bytes) }
    } catch {
        fail("MuonFP \(muon) does not read back as a pattern: \(error)", bytes)
    }

    // p0f raw signature -> p0f.fp line -> loads and matches itself, not fuzzy.
    let sig = fp.signature
    if fp.p0f.ttl > 0 && !sig.contains("+?") && fp.p0f.ipOptionsLength <= 255 {
        let text = "classes = unix\n[tcp:request]\nlabel = s:unix:Fuzz:self\nsig = \(sig)\n"
        do {
            let db = try P0fDatabase(text: text, origin: "fuzz.fp")
            guard let m = db.match(fp.p0f) else { fail("raw signature \(sig) does not match itself", bytes) }
            if m.fuzzy || m.distance != fp.p0f.guessedDistance { fail("raw signature \(sig) matched itself fuzzily or at another distance", bytes) }
        } catch {
            fail("raw signature \(sig) does not load as a p0f.fp line: \(error)", bytes)
        }
    }
    _ = fp.os
    _ = fp.facts
}
