#!/usr/bin/env python3
"""Load generator for the Handoff tests and scripts/bench-restart.

New connections (one request each, Connection: close) from --new workers plus --keepalive
long-lived connections sending requests back to back. Runs until SIGTERM/SIGINT, then prints one
JSON line: connections, requests, failed_connections, failed_requests, errors (by kind).
A failed connection: connect() failed (refused, reset, timeout). A failed request: a request was
sent and no complete 200 response came back (reset, EOF, timeout).

--udp PORT adds a worker that sends numbered datagrams one after another and waits for each echo
(datagrams, lost_datagrams: no echo within 2 s); --unix PATH adds workers that each connect to the
unix stream socket, send a line and read the answer (unix_requests, failed_unix). --port 0: no TCP.
"""
import argparse, json, signal, socket, threading, time

p = argparse.ArgumentParser()
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--port", type=int, default=0)
p.add_argument("--new", type=int, default=4)
p.add_argument("--keepalive", type=int, default=4)
p.add_argument("--udp", type=int, default=0)
p.add_argument("--unix", default="")
p.add_argument("--unix-workers", type=int, default=2)
a = p.parse_args()

stop = threading.Event()
lock = threading.Lock()
stats = {"connections": 0, "requests": 0, "failed_connections": 0, "failed_requests": 0, "errors": {},
         "datagrams": 0, "lost_datagrams": 0, "unix_requests": 0, "failed_unix": 0, "answered_by": {}}

def count(key, err=None):
    with lock:
        stats[key] += 1
        if err:
            stats["errors"][err] = stats["errors"].get(err, 0) + 1

def connect():
    s = socket.create_connection((a.host, a.port), timeout=10)
    count("connections")
    return s

def request(s, close):
    s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n" + (b"Connection: close\r\n" if close else b"") + b"\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("eof before response")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise ConnectionError("bad status")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("eof in body")
        body += chunk
    count("requests")
    return b"connection: close" in head.lower()

def new_worker():
    while not stop.is_set():
        try:
            s = connect()
        except OSError as e:
            count("failed_connections", type(e).__name__); time.sleep(0.01); continue
        try:
            request(s, True)
        except OSError as e:
            count("failed_requests", type(e).__name__)
        finally:
            s.close()

def keepalive_worker():
    s = None
    while not stop.is_set():
        if s is None:
            try:
                s = connect()
            except OSError as e:
                count("failed_connections", type(e).__name__); time.sleep(0.01); continue
        try:
            if request(s, False):
                s.close(); s = None
        except OSError as e:
            count("failed_requests", type(e).__name__); s.close(); s = None
        time.sleep(0.002)
    if s:
        s.close()

def udp_worker():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.connect((a.host, a.udp))
    u.settimeout(2)
    seq = 0
    while not stop.is_set():
        seq += 1
        msg = b"dgram %d" % seq
        try:
            u.send(msg)
            while True:
                reply = u.recv(65536)
                if reply.endswith(b":" + msg):
                    break
            count("datagrams")
            with lock:
                gen = reply.split(b":")[0].decode()
                stats["answered_by"][gen] = stats["answered_by"].get(gen, 0) + 1
        except OSError as e:
            count("lost_datagrams", "udp " + type(e).__name__)
        time.sleep(0.002)
    u.close()

def unix_worker():
    while not stop.is_set():
        try:
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(10)
            c.connect(a.unix)
            c.sendall(b"hello\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = c.recv(4096)
                if not chunk:
                    raise ConnectionError("eof")
                buf += chunk
            if not buf.endswith(b": hello\n"):
                raise ConnectionError("bad answer")
            count("unix_requests")
        except OSError as e:
            count("failed_unix", "unix " + type(e).__name__)
            time.sleep(0.01)
        finally:
            c.close()
        time.sleep(0.002)

# The parent may have left SIGTERM blocked (the mask survives exec): unblock it.
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
threads = []
if a.port:
    threads += [threading.Thread(target=new_worker) for _ in range(a.new)] + \
               [threading.Thread(target=keepalive_worker) for _ in range(a.keepalive)]
if a.udp:
    threads.append(threading.Thread(target=udp_worker))
if a.unix:
    threads += [threading.Thread(target=unix_worker) for _ in range(a.unix_workers)]
for t in threads: t.start()
print("started", flush=True)
while not stop.is_set():
    time.sleep(0.05)
for t in threads: t.join()
print(json.dumps(stats), flush=True)
