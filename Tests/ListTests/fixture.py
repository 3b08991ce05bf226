#!/usr/bin/env python3
"""Socket fixture for the list oracle test. Runs inside a test network namespace that has lo up and
a veth v0 with 10.30.0.1/24 whose peer has no address (SYNs to 10.30.0.2 go out unanswered: SYN-SENT; the test adds a permanent neighbour entry). Opens TCP, UDP and
UNIX sockets in many states over IPv4 and IPv6, prints READY, holds them until stdin closes."""
import os, socket, sys, time

TMP = sys.argv[1]
keep = []

def tcp(fam=socket.AF_INET):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    keep.append(s)
    return s

def listener(addr, fam=socket.AF_INET):
    s = tcp(fam); s.bind(addr); s.listen(16); return s

def pair(l, fam=socket.AF_INET):
    c = tcp(fam); c.connect(l.getsockname()[:2]); a, _ = l.accept(); keep.append(a); return c, a

for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    l = listener((host, 0), fam)
    pair(l, fam); pair(l, fam)                       # established x2 each side
    c, a = pair(l, fam); c.close(); time.sleep(0.05); a.close()   # client TIME-WAIT
    c, a = pair(l, fam); c.close()                   # server CLOSE-WAIT, client FIN-WAIT-2
# SYN-SENT to an address behind a dummy interface
s = tcp(); s.setblocking(False)
try: s.connect(("10.30.0.2", 80))
except BlockingIOError: pass
# dual-stack listener with a v4-mapped client
l6 = listener(("::", 0), socket.AF_INET6)
c = tcp(); c.connect(("127.0.0.1", l6.getsockname()[1])); a, _ = l6.accept(); keep.append(a)
# UDP: unconnected and connected, v4 and v6
for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    u = socket.socket(fam, socket.SOCK_DGRAM); u.bind((host, 0)); keep.append(u)
    v = socket.socket(fam, socket.SOCK_DGRAM); v.connect(u.getsockname()[:2]); keep.append(v)
# UNIX: stream listener + connected pair, dgram, socketpair, abstract
path = os.path.join(TMP, "oracle.sock")
ul = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); ul.bind(path); ul.listen(4); keep.append(ul)
uc = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); uc.connect(path); keep.append(uc)
ua, _ = ul.accept(); keep.append(ua)
ud = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); ud.bind(os.path.join(TMP, "oracle.dgram")); keep.append(ud)
keep.extend(socket.socketpair())
ab = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); ab.bind("\0sockctl-oracle-" + str(os.getpid())); ab.listen(1); keep.append(ab)
time.sleep(0.2)
print("READY", flush=True)
sys.stdin.read()
