#!/usr/bin/env python3
"""Kill-test fixture: TCP pairs on ports 7101 (targets) and 7102 (bystanders), IPv4 and IPv6, and
connected UDP sockets to 7101 and 7102. Prints READY; on each stdin line prints one JSON line
{name: result} where result is what send+recv on that socket gives now: "ok" (data moved),
"ECONNABORTED", "ECONNRESET", ... A socket that got data echoes nothing back; "ok" means send worked
and, for TCP, the peer then received the byte."""
import errno, json, socket, sys, time

socks = {}
for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    v = "4" if fam == socket.AF_INET else "6"
    for port in (7101, 7102):
        l = socket.socket(fam); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind((host, port)); l.listen()
        c = socket.socket(fam); c.connect((host, port)); a, _ = l.accept()
        socks[f"tcp{v}-{port}-client"] = (c, a)
        socks[f"tcp{v}-{port}-server"] = (a, c)
        socks[f"tcp{v}-{port}-listener"] = (l, None)
        u = socket.socket(fam, socket.SOCK_DGRAM); u.bind((host, port))
        uc = socket.socket(fam, socket.SOCK_DGRAM); uc.connect((host, port))
        socks[f"udp{v}-{port}-client"] = (uc, u)
print("READY", flush=True)

def probe(s, peer):
    # A pending socket error (what the owner's next call would return) comes first.
    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        return errno.errorcode.get(err, str(err))
    try:
        if s.type == socket.SOCK_STREAM and peer is None:
            try:
                s.setblocking(False); s.accept()
            except BlockingIOError: return "ok"
            except OSError as e: return errno.errorcode.get(e.errno, str(e.errno))
            return "ok"
        s.send(b"x")
        if peer is not None:
            peer.settimeout(1)
            peer.recv(1)
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))

for line in sys.stdin:
    print(json.dumps({k: probe(s, p) for k, (s, p) in socks.items()}), flush=True)
