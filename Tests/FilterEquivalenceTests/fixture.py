#!/usr/bin/env python3
"""Socket fixture for the filter-equivalence test. Run inside network namespace A (the test runs
`ip netns exec A python3 fixture.py TAG PEER_NS`), with namespace B reachable over veth vA<->vB:
A = 10.20.0.1/24 fd20::1/64, B = 10.20.0.2/24 fd20::2/64; 10.99.0.0/16 is routed to B, which drops it.
Prints READY when every socket is in place and holds them until stdin closes."""
import ctypes, os, socket, sys, time

TAG, TMP = sys.argv[1], sys.argv[2]
CGROUP = sys.argv[3] if len(sys.argv) > 3 else ""   # cgroup v2 directory for the child's sockets
SO_MARK = 36
keep = []

def tcp(fam=socket.AF_INET):
    s = socket.socket(fam, socket.SOCK_STREAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); keep.append(s); return s

def listen(addr, fam=socket.AF_INET, mark=None, dev=None, v6only=None):
    s = tcp(fam)
    if mark is not None: s.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
    if dev: s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
    if v6only is not None: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
    s.bind(addr); s.listen(64); return s

def connect(dst, fam=socket.AF_INET, src=None, mark=None, dev=None):
    c = tcp(fam)
    if mark is not None: c.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
    if dev: c.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
    if src: c.bind(src)
    c.connect(dst); return c

def accept(l):
    a, _ = l.accept(); keep.append(a); return a

# listeners
l80 = listen(("0.0.0.0", 80))
l8080 = listen(("127.0.0.1", 8080), mark=0x10)
l443 = listen(("::", 443), socket.AF_INET6, v6only=0)          # dual stack: v4 clients appear v4-mapped
l22 = listen(("::1", 22), socket.AF_INET6, mark=0x11)
l9000 = listen(("fd20::1", 9000), socket.AF_INET6, v6only=1)
l7001 = listen(("10.20.0.1", 7001), dev="vA", mark=0x20)
l7002 = listen(("0.0.0.0", 7002), dev="lo")

# established pairs on lo (client ports chosen by the kernel = autobound)
for _ in range(2):
    connect(("127.0.0.1", 8080)); accept(l8080)
connect(("127.0.0.1", 8080), src=("127.0.0.1", 2222)); accept(l8080)        # explicitly bound client
connect(("127.0.0.1", 443)); accept(l443)                                   # v4 client -> ::ffff:127.0.0.1 server side
connect(("::1", 22), socket.AF_INET6, mark=0x21); accept(l22)
connect(("10.20.0.1", 80), mark=0x10); accept(l80)
connect(("fd20::1", 9000), socket.AF_INET6); accept(l9000)
connect(("127.0.0.1", 7002), dev="lo"); accept(l7002)

# over the veth to namespace B's listeners, bound to vA
connect(("10.20.0.2", 7000), dev="vA")
connect(("fd20::2", 7000), socket.AF_INET6, dev="vA", mark=0x30)

# close-wait / fin-wait-2: the client shuts its side, the server keeps its own open
for dst, fam, l in ((("127.0.0.1", 8080), socket.AF_INET, l8080), (("::1", 22), socket.AF_INET6, l22)):
    c = connect(dst, fam); a = accept(l); c.shutdown(socket.SHUT_WR)

# time-wait: the client closes first, then the server
for dst, fam, l in ((("127.0.0.1", 80), socket.AF_INET, l80), (("::1", 22), socket.AF_INET6, l22),
                    (("127.0.0.1", 443), socket.AF_INET, l443)):
    c = socket.socket(fam, socket.SOCK_STREAM); c.connect(dst); a, _ = l.accept()
    c.close(); time.sleep(0.05); a.close()

# syn-sent: 10.99.0.0/16 goes to B, which drops it
for port in (9999, 10000):
    c = tcp(); c.setblocking(False)
    try: c.connect(("10.99.0.1", port))
    except BlockingIOError: pass

# UDP
def udp(addr, fam=socket.AF_INET, mark=None, dev=None, peer=None):
    u = socket.socket(fam, socket.SOCK_DGRAM); keep.append(u)
    if mark is not None: u.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
    if dev: u.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
    u.bind(addr)
    if peer: u.connect(peer)
    return u
udp(("0.0.0.0", 53))
udp(("::", 5353), socket.AF_INET6)
udp(("127.0.0.1", 4001), peer=("127.0.0.1", 53))
udp(("10.20.0.1", 4002), dev="vA", mark=0x10)
udp(("::1", 0), socket.AF_INET6, peer=("::1", 5353))
udp(("10.20.0.1", 0), peer=("10.20.0.2", 53))

# UNIX
def unix(kind, path=None, listen_=False):
    u = socket.socket(socket.AF_UNIX, kind); keep.append(u)
    if path is not None: u.bind(path)
    if listen_: u.listen(8)
    return u
lst = unix(socket.SOCK_STREAM, f"{TMP}/stream.sock", True)
cl = unix(socket.SOCK_STREAM); cl.connect(f"{TMP}/stream.sock"); keep.append(lst.accept()[0])
unix(socket.SOCK_STREAM, f"\0sockctl-t-{TAG}-abstract", True)
unix(socket.SOCK_DGRAM, f"{TMP}/dgram.sock")
unix(socket.SOCK_SEQPACKET, f"{TMP}/Seq.sock", True)
au = unix(socket.SOCK_DGRAM); au.bind("")                                    # autobind: @xxxxx
a, b = socket.socketpair(); keep += [a, b]

# another uid and command name holding one listener
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    libc = ctypes.CDLL(None)
    libc.prctl(15, b"sockfixchild", 0, 0, 0)
    if CGROUP:
        with open(f"{CGROUP}/cgroup.procs", "w") as f: f.write(str(os.getpid()))
    os.setresgid(1234, 1234, 1234); os.setresuid(1234, 1234, 1234)
    s = socket.socket(); s.bind(("127.0.0.1", 3000)); s.listen(4)
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); u.bind(f"\0sockctl-t-{TAG}-child"); u.listen(1)
    os.write(w, b"x"); os.close(w)
    sys.stdin.read(); os._exit(0)
os.close(w)
if os.read(r, 1) != b"x":
    sys.exit("fixture child failed")
time.sleep(0.3)
print("READY", flush=True)
sys.stdin.read()
os.kill(pid, 9)
