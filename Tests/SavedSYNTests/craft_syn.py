#!/usr/bin/python3
# Sends SYNs that imitate other TCP stacks from a test namespace and completes each handshake, so the
# server's accept() returns and TCP_SAVED_SYN holds the crafted SYN. Run by SavedSYNTests inside the
# client namespace; the namespace drops its own kernel's RSTs (nftables), so the kernel does not reset
# the connections it knows nothing about.
#
# usage: craft_syn.py IFACE SRC_MAC DST_MAC SRC4 DST4 PORT4 SRC6 DST6 PORT6 FIRST_SPORT
# prints one line per profile: "<name> <sport> <ok|timeout>"
import random
import sys
import time

from scapy.all import conf, Ether, IP, IPv6, IPv6ExtHdrDestOpt, TCP, PadN, IPOption_NOP, IPOption_EOL  # noqa

iface, smac, dmac, src4, dst4, port4, src6, dst6, port6, first = sys.argv[1:11]
port4, port6, sport = int(port4), int(port6), int(first)
random.seed(7)

MSS4 = [("MSS", 1460)]

# name, ip layer builder (v4/v6), tcp window, tcp options, extra tcp fields
profiles = [
    ("windows10", 4, dict(ttl=128, flags="DF", id=0x1a2b), 64240,
     [("MSS", 1460), ("NOP", None), ("WScale", 8), ("NOP", None), ("NOP", None), ("SAckOK", b"")], {}),
    ("windows11-65535", 4, dict(ttl=125, flags="DF", id=0x3c4d), 65535,
     [("MSS", 1460), ("NOP", None), ("WScale", 8), ("NOP", None), ("NOP", None), ("SAckOK", b"")], {}),
    ("macos", 4, dict(ttl=64, flags="DF", id=0x0101), 65535,
     [("MSS", 1460), ("NOP", None), ("WScale", 6), ("NOP", None), ("NOP", None),
      ("Timestamp", (123456789, 0)), ("SAckOK", b""), ("EOL", None)], {}),
    ("macos-ecn", 4, dict(ttl=62, flags="DF", id=0x0202), 65535,
     [("MSS", 1460), ("NOP", None), ("WScale", 6), ("NOP", None), ("NOP", None),
      ("Timestamp", (223456789, 0)), ("SAckOK", b""), ("EOL", None)], dict(flags="SEC")),
    ("ios", 4, dict(ttl=64, flags="DF", id=0x0303), 65535,
     [("MSS", 1460), ("NOP", None), ("WScale", 2), ("NOP", None), ("NOP", None),
      ("Timestamp", (323456789, 0)), ("SAckOK", b""), ("EOL", None)], {}),
    ("linux", 4, dict(ttl=64, flags="DF", id=0x4444), 64240,
     [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (423456789, 0)), ("NOP", None), ("WScale", 7)], {}),
    ("freebsd", 4, dict(ttl=64, flags="DF", id=0x5555), 65535,
     [("MSS", 1460), ("NOP", None), ("WScale", 6), ("SAckOK", b""), ("Timestamp", (523456789, 0))], {}),
    ("nmap-syn-scan", 4, dict(ttl=47, id=0x6e6e), 1024, [("MSS", 1460)], {}),
    ("nmap-os-probe", 4, dict(ttl=58, id=0x7f7f), 1,
     [("WScale", 10), ("NOP", None), ("MSS", 1460), ("Timestamp", (0xFFFFFFFF, 0)), ("SAckOK", b"")],
     dict(ack=0x01ABCDEF)),
    ("ack-bit24-clear", 4, dict(ttl=64, flags="DF", id=0x1111), 64240,
     [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (623456789, 0)), ("NOP", None), ("WScale", 7)],
     dict(ack=0x00ABCDEF)),
    ("ipv4-options", 4, dict(ttl=64, flags="DF", id=0x1234,
                             options=[IPOption_NOP(), IPOption_NOP(), IPOption_NOP(), IPOption_EOL()]), 64240,
     [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (723456789, 0)), ("NOP", None), ("WScale", 7)], {}),
    ("bad-option", 4, dict(ttl=64, flags="DF", id=0x2345), 29200,
     b"\x02\x04\x05\xb4\x01\x63\x1e\x00", {}),
    ("tfo-mptcp", 4, dict(ttl=64, flags="DF", id=0x3456), 64240,
     [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (823456789, 0)), ("NOP", None), ("WScale", 7),
      (34, b""), (30, b"\x01\x81")], {}),
    ("ipv6-linux", 6, dict(hlim=64, fl=0x9abcd), 64800,
     [("MSS", 1440), ("SAckOK", b""), ("Timestamp", (923456789, 0)), ("NOP", None), ("WScale", 7)], {}),
    ("ipv6-windows", 6, dict(hlim=128, fl=0), 64800,
     [("MSS", 1440), ("NOP", None), ("WScale", 8), ("NOP", None), ("NOP", None), ("SAckOK", b"")], {}),
    ("ipv6-ext-header", 6, dict(hlim=64, fl=0x12345, ext=True), 64800,
     [("MSS", 1440), ("SAckOK", b""), ("Timestamp", (1023456789, 0)), ("NOP", None), ("WScale", 7)], {}),
]

sock = conf.L2socket(iface=iface)


def tcp_options(opts):
    return opts


for name, ver, ipf, win, opts, extra in profiles:
    ipf = dict(ipf)
    seq = random.randint(1, 2**32 - 1)
    flags = extra.get("flags", "S")
    ack = extra.get("ack", 0)
    if ver == 4:
        ip = IP(src=src4, dst=dst4, **ipf)
        dport = port4
    else:
        ext = ipf.pop("ext", False)
        ip = IPv6(src=src6, dst=dst6, **ipf)
        if ext:
            ip = ip / IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\x00\x00\x00\x00")])
        dport = port6
    if isinstance(opts, bytes):
        tcp = TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, window=win, dataofs=(20 + len(opts)) // 4)
        syn = Ether(src=smac, dst=dmac) / ip / tcp / opts
        # Options given as raw bytes: put them in the header (dataofs covers them).
    else:
        tcp = TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, window=win, options=opts)
        syn = Ether(src=smac, dst=dmac) / ip / tcp
    sock.send(syn)
    deadline = time.time() + 3
    result = "timeout"
    while time.time() < deadline:
        p = sock.recv()
        if p is None or TCP not in p:
            continue
        t = p[TCP]
        if t.dport == sport and (t.flags & 0x12) == 0x12:
            back = IP(src=src4, dst=dst4, ttl=64) if ver == 4 else IPv6(src=src6, dst=dst6, hlim=64)
            ackp = Ether(src=smac, dst=dmac) / back / TCP(
                sport=sport, dport=dport, seq=seq + 1, ack=t.seq + 1, flags="A", window=win)
            sock.send(ackp)
            result = "ok"
            break
    print(name, sport, result, flush=True)
    sport += 1
sock.close()
