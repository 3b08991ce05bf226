#!/usr/bin/env python3
"""A server for the Handoff tests that is not written against our Swift API: it speaks only the
systemd protocols (LISTEN_FDS/LISTEN_FDNAMES/LISTEN_PID, NOTIFY_SOCKET) and serves every listener
it inherits:

  tcp stream   HTTP/1.1 keep-alive; GET /ready?generation=N answers 200 only when N is our own
               SOCKCTL_GENERATION and the warm-up is over (503 otherwise); any other path 200
               "gen G pid P"
  udp          echo: each datagram back to its sender, prefixed "gen G:"
  unix stream  one line in, "gen G: LINE" out, per connection

Options: --report FILE   write what we inherited (JSON, to FILE.GENERATION) before serving: env, each fd 3.. (family,
                         type, listening, SO_REUSEPORT, close-on-exec), and which fds above ours are open
         --warmup 500ms  wait this long before READY=1 / answering /ready / opening --health-port
         --health-port P after the warm-up, listen on 127.0.0.<generation>:P (a per-generation
                         health address for `--ready tcp://127.0.0.{generation}:P`)
         --behavior-file F  read at start: ok | never-ready (serve, never READY=1, /ready 503)
         --no-notify     never send READY=1 (for --ready tcp/http)
         --fdstore       keep a counter in a memfd: the first generation creates it and deposits it
                         (FDSTORE=1, FDNAME=state); later ones find it in LISTEN_FDNAMES and add 1

         --stop-signal USR2  stop on this signal instead of SIGTERM (and ignore SIGTERM)
         behavior "ignore-stop": ignore the stop signal too (only SIGKILL ends us)

SIGTERM (or --stop-signal): stop accepting and reading datagrams, finish open connections, exit 0.
"""
import fcntl, json, os, signal, socket, stat, sys, threading, time

# Look at the inherited fds before Python opens anything of its own.
pid = os.getpid()
inherited = int(os.environ.get("LISTEN_FDS", "0"))
listen_pid = os.environ.get("LISTEN_PID")
def fd_open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


open_above = [fd for fd in range(3 + inherited, 64) if fd_open(fd)]

args = sys.argv[1:]


def option(name, default=None):
    if name in args:
        return args[args.index(name) + 1]
    return default


def seconds(text):
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    if text.endswith("s"):
        return float(text[:-1])
    return float(text)


generation = int(os.environ.get("SOCKCTL_GENERATION", "0"))
warmup = seconds(option("--warmup", "0"))
health_port = option("--health-port")
behavior = "ok"
if option("--behavior-file"):
    with open(option("--behavior-file")) as f:
        behavior = f.read().strip()
notify = "--no-notify" not in args and behavior != "never-ready"

if listen_pid != str(pid):
    sys.stderr.write(f"test-server: LISTEN_PID={listen_pid} is not my pid {pid}\n")
    sys.exit(3)
names = os.environ.get("LISTEN_FDNAMES", "").split(":")
socks = []
report = {"pid": pid, "env": {k: v for k, v in os.environ.items() if k.startswith(("LISTEN_", "NOTIFY_", "SOCKCTL_"))},
          "open_above": open_above, "fds": []}
for i in range(inherited):
    fd = 3 + i
    if not stat.S_ISSOCK(os.fstat(fd).st_mode):
        report["fds"].append({"fd": fd, "name": names[i], "family": "none", "type": "none", "listening": False, "reuseport": False,
                              "cloexec": bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)})
        continue
    s = socket.socket(fileno=fd)
    info = {"fd": fd, "name": names[i], "family": s.family.name, "type": s.type.name,
            "cloexec": bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC),
            "listening": bool(s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)),
            "reuseport": bool(s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)) if s.family != socket.AF_UNIX else False,
            "local": str(s.getsockname())}
    report["fds"].append(info)
    socks.append(s)
# --fdstore: a counter in a memfd named "state", deposited with the supervisor (FDSTORE=1) by the
# first generation and incremented by each later one that inherits it.
store_fd = None
if "--fdstore" in args:
    if "state" in names:
        state_fd = 3 + names.index("state")
        count = int(os.pread(state_fd, 32, 0).strip(b"\0") or b"0")
    else:
        state_fd = store_fd = os.memfd_create("state")
        count = 0
    count += 1
    os.ftruncate(state_fd, 0)
    os.pwrite(state_fd, b"%d" % count, 0)
    report["state"] = {"count": count, "inode": os.fstat(state_fd).st_ino}
if option("--report"):
    path = f"{option('--report')}.{generation}"
    with open(path + ".tmp", "w") as f:
        json.dump(report, f)
    os.rename(path + ".tmp", path)

started = time.monotonic()
stopping = threading.Event()
lock = threading.Lock()
open_conns = [0]


def warm():
    return time.monotonic() - started >= warmup


def http_conn(c):
    try:
        c.settimeout(0.1)
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                try:
                    chunk = c.recv(4096)
                except socket.timeout:
                    if stopping.is_set() and not buf:
                        return
                    continue
                if not chunk:
                    return
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            line = head.split(b"\r\n")[0].decode()
            path = line.split(" ")[1] if " " in line else "/"
            status = "200 OK"
            if path.startswith("/ready"):
                asked = path.partition("generation=")[2]
                ok = behavior != "never-ready" and warm() and asked == str(generation)
                status = "200 OK" if ok else "503 Service Unavailable"
            body = f"gen {generation} pid {pid}\n".encode()
            closing = stopping.is_set() or b"connection: close" in head.lower()
            c.sendall(f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n".encode() +
                      (b"Connection: close\r\n" if closing else b"") + b"\r\n" + body)
            if closing:
                c.shutdown(socket.SHUT_WR)
                c.settimeout(1)
                while c.recv(1024):
                    pass
                return
    except OSError:
        pass
    finally:
        c.close()
        with lock:
            open_conns[0] -= 1


def unix_conn(c):
    try:
        c.settimeout(2)
        buf = b""
        while b"\n" not in buf:
            chunk = c.recv(4096)
            if not chunk:
                return
            buf += chunk
        c.sendall(f"gen {generation}: ".encode() + buf.partition(b"\n")[0] + b"\n")
    except OSError:
        pass
    finally:
        c.close()
        with lock:
            open_conns[0] -= 1


def accept_loop(s, handler):
    s.settimeout(0.05)
    while not stopping.is_set():
        try:
            c, _ = s.accept()
        except socket.timeout:
            continue
        except OSError:
            return
        with lock:
            open_conns[0] += 1
        threading.Thread(target=handler, args=(c,), daemon=True).start()


def udp_loop(s):
    # One datagram at a time, answered before the next read, and no read once SIGTERM came: a
    # datagram is either answered by us or left in the shared socket for the next generation.
    s.settimeout(0.05)
    while not stopping.is_set():
        try:
            data, peer = s.recvfrom(65536)
        except socket.timeout:
            continue
        except OSError:
            return
        s.sendto(f"gen {generation}:".encode() + data, peer)


def health():
    h = socket.socket()
    h.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    h.bind((f"127.0.0.{generation}", int(health_port)))
    h.listen(16)
    h.settimeout(0.05)
    while not stopping.is_set():
        try:
            c, _ = h.accept()
            c.close()
        except socket.timeout:
            pass


stop_signal = getattr(signal, "SIG" + option("--stop-signal", "TERM"))
signal.pthread_sigmask(signal.SIG_UNBLOCK, {stop_signal})
if stop_signal != signal.SIGTERM:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(stop_signal, signal.SIG_IGN if behavior == "ignore-stop" else (lambda *_: stopping.set()))
threads = []
for s in socks:
    if s.type == socket.SOCK_DGRAM:
        threads.append(threading.Thread(target=udp_loop, args=(s,)))
    elif s.family == socket.AF_UNIX:
        threads.append(threading.Thread(target=accept_loop, args=(s, unix_conn)))
    else:
        threads.append(threading.Thread(target=accept_loop, args=(s, http_conn)))
for t in threads:
    t.start()
while not warm() and not stopping.is_set():
    time.sleep(0.01)
if health_port and behavior != "never-ready":
    threading.Thread(target=health, daemon=True).start()
if store_fd is not None and os.environ.get("NOTIFY_SOCKET"):
    n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    n.connect(os.environ["NOTIFY_SOCKET"])
    socket.send_fds(n, [b"FDSTORE=1\nFDNAME=state"], [store_fd])
    n.close()
if notify and os.environ.get("NOTIFY_SOCKET"):
    n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    n.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
    n.close()
while not stopping.is_set():
    time.sleep(0.02)
for t in threads:
    t.join()
while True:
    with lock:
        if open_conns[0] <= 0:
            break
    time.sleep(0.01)
sys.exit(0)
