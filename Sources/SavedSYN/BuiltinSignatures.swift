/// sockctl's own p0f-format signatures for stacks that p0f 3.09b's database (2016) lacks: modern Linux
/// (initial window 10 segments, `mss*44` / `mss*45`), Windows 10/11, macOS 11+, and IPv6.
///
/// Each label carries a `; source:` line saying where the signature comes from: "measured" ones were
/// read from SYNs captured with TCP_SAVED_SYN in sockctl's tests on Linux 6.18; "documented" ones are
/// the layouts those systems are publicly documented to send (window, option order, scale, TTL) and
/// are reproduced by crafted SYNs in the tests, not captured from the systems themselves.
/// It is matched before any database given by path (`BuiltinSignatures.database.merged(with:)`).
public enum BuiltinSignatures {
    public static let text = """
    ; sockctl built-in signatures, p0f v3 format (see p0f's docs/README section 5).
    classes = win,unix,other

    [tcp:request]

    ; source: measured: Linux 6.18 connect() over a 1500-MTU veth, IPv4 (window 64240 = 1460*44, wscale 7 with the default tcp_rmem); SavedSYNTests.kernelSYNMatchesBuiltinDatabase
    label = s:unix:Linux:4.x-6.x
    sig   = 4:64:0:*:mss*44,*:mss,sok,ts,nop,ws:df,id+:0

    ; source: measured: Linux 6.18 connect() over a 1500-MTU veth, IPv6 (window 64800 = 1440*45, flow label set); SavedSYNTests.kernelSYNMatchesBuiltinDatabase
    label = s:unix:Linux:4.x-6.x (IPv6)
    sig   = 6:64:0:*:mss*45,*:mss,sok,ts,nop,ws:flow:0

    ; source: measured: Linux 6.18 connect() on loopback (MSS 65483 or 65495, window = 1 MSS, wscale 7), IPv4 and IPv6
    label = s:unix:Linux:4.x-6.x (loopback)
    sig   = 4:64:0:*:mss*1,*:mss,sok,ts,nop,ws:df,id+:0
    sig   = 6:64:0:*:mss*1,*:mss,sok,ts,nop,ws:flow:0

    ; source: documented: Windows 10 and 11 SYN: TTL 128, DF with non-zero IP ID, window 64240 (or 65535), MSS,NOP,WS=8,NOP,NOP,SACK-permitted; not captured here, reproduced by the crafted SYNs in SavedSYNTests
    label = s:win:Windows:10 or 11
    sig   = 4:128:0:*:64240,8:mss,nop,ws,nop,nop,sok:df,id+:0
    sig   = 4:128:0:*:65535,8:mss,nop,ws,nop,nop,sok:df,id+:0

    ; source: documented: Windows 10 and 11 over IPv6: hop limit 128, no flow label, same options (window 64800 = 1440*45 or 65535); not captured here
    label = s:win:Windows:10 or 11 (IPv6)
    sig   = 6:128:0:*:mss*45,8:mss,nop,ws,nop,nop,sok::0
    sig   = 6:128:0:*:65535,8:mss,nop,ws,nop,nop,sok::0

    ; source: documented: macOS 11+ and iOS 14+ SYN: TTL 64, window 65535, wscale 6, MSS,NOP,WS,NOP,NOP,TS,SACK-permitted,EOL and one byte of padding; not captured here
    label = s:unix:macOS:11 or newer (or iOS)
    sig   = 4:64:0:*:65535,6:mss,nop,ws,nop,nop,ts,sok,eol+1:df,id+:0
    sig   = 6:64:0:*:65535,6:mss,nop,ws,nop,nop,ts,sok,eol+1:flow:0
    sig   = 6:64:0:*:65535,6:mss,nop,ws,nop,nop,ts,sok,eol+1::0

    ; source: documented: FreeBSD 13/14 over IPv6 (same layout as p0f's IPv4 "FreeBSD 9.x or newer"); not captured here
    label = s:unix:FreeBSD:13 or newer (IPv6)
    sig   = 6:64:0:*:65535,6:mss,nop,ws,sok,ts::0
    """

    /// The parsed database. The text is part of the program, so a syntax error is a bug (crash).
    public static let database: P0fDatabase = {
        do {
            return try P0fDatabase(text: text, origin: "sockctl-builtin.fp")
        } catch {
            fatalError("built-in signature database: \(error)")
        }
    }()
}
