#!/usr/bin/env python3
"""Listeners in namespace B for the fixture's veth connections; holds accepted sockets until stdin closes."""
import socket, sys, threading
keep = []
for fam, addr in ((socket.AF_INET, ("10.20.0.2", 7000)), (socket.AF_INET6, ("fd20::2", 7000))):
    s = socket.socket(fam); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(addr); s.listen(16); keep.append(s)
    threading.Thread(target=lambda s=s: [keep.append(s.accept()[0]) for _ in range(16)], daemon=True).start()
print("READY", flush=True)
sys.stdin.read()
