#!/usr/bin/env python3
"""Daemon-test fixture. For each address given (IPv4 or IPv6, already on an interface of this
namespace): a TCP listener on ADDR:PORT, a TCP connection from ADDR to it (both ends bound to
ADDR), and a connected UDP socket bound to ADDR. With --to HOST:PORT (repeatable): a TCP client
connection to that server (a listener is opened on it here too, as the 'backend').
Prints READY; on each stdin line prints one JSON object {name: state}, where state is "ok" when
data still moves (send + the peer's recv, accept for listeners) or the errno name (ECONNABORTED)."""
import errno, json, socket, sys

port = 7300
addrs, backends = [], []
args = sys.argv[1:]
while args:
    a = args.pop(0)
    if a == "--port": port = int(args.pop(0))
    elif a == "--to": backends.append(args.pop(0))
    else: addrs.append(a)

socks = {}
def fam(a): return socket.AF_INET6 if ":" in a else socket.AF_INET
for a in addrs:
    f = fam(a)
    l = socket.socket(f); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind((a, port)); l.listen(64)
    c = socket.socket(f); c.bind((a, 0)); c.connect((a, port)); s, _ = l.accept()
    u = socket.socket(f, socket.SOCK_DGRAM); u.bind((a, port + 1))
    uc = socket.socket(f, socket.SOCK_DGRAM); uc.bind((a, 0)); uc.connect((a, port + 1))
    socks[f"tcp-{a}-client"] = (c, s)
    socks[f"tcp-{a}-server"] = (s, c)
    socks[f"tcp-{a}-listener"] = (l, None)
    socks[f"udp-{a}-client"] = (uc, u)
for b in backends:
    host, p = b.rsplit(":", 1)
    host = host.strip("[]")
    f = fam(host)
    l = socket.socket(f); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind((host, int(p))); l.listen(64)
    c = socket.socket(f); c.connect((host, int(p))); s, _ = l.accept()
    socks[f"to-{b}-client"] = (c, s)
print("READY", flush=True)

sticky = {}  # fd -> the first error a socket reported (reading SO_ERROR clears it)

def error_of(s):
    if s.fileno() in sticky: return sticky[s.fileno()]
    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        sticky[s.fileno()] = errno.errorcode.get(err, str(err))
        return sticky[s.fileno()]
    return None

def probe(s, peer):
    e = error_of(s)
    if e: return e
    try:
        if s.type == socket.SOCK_STREAM and peer is None:
            s.setblocking(False)
            try: s.accept()
            except BlockingIOError: pass
            return "ok"
        s.send(b"x")
    except OSError as x:
        sticky[s.fileno()] = errno.errorcode.get(x.errno, str(x.errno))
        return sticky[s.fileno()]
    pe = error_of(peer)
    if pe: return "peer-" + pe
    try:
        peer.settimeout(1)
        peer.recv(1)
        return "ok"
    except OSError as x:
        # recv() reported (and so cleared) the peer's error: keep it for the peer's own probe.
        if x.errno is not None:
            sticky[peer.fileno()] = errno.errorcode.get(x.errno, str(x.errno))
        return "peer-" + errno.errorcode.get(x.errno, str(x.errno))

for line in sys.stdin:
    print(json.dumps({k: probe(s, p) for k, (s, p) in socks.items()}), flush=True)
