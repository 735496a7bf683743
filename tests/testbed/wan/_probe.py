"""Tiny network probes run inside site namespaces by the WAN tests (standard library only).

python _probe.py serve ADDR PORT            TCP server: prints "listening", echoes lines
python _probe.py connect ADDR PORT TIMEOUT  exit 0 connected, 3 timed out, 4 refused
"""

from __future__ import annotations

import socket
import socketserver
import sys
import time


class _Echo(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(line)


def serve(addr: str, port: int) -> int:
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    with socketserver.ThreadingTCPServer((addr, port), _Echo) as server:
        print("listening", flush=True)
        server.serve_forever()
    return 0


def connect(addr: str, port: int, timeout: float) -> int:
    start = time.perf_counter()
    try:
        with socket.create_connection((addr, port), timeout=timeout) as conn:
            conn.sendall(b"ping\n")
            reply = conn.makefile("rb").readline()
    except TimeoutError:
        print("timeout")
        return 3
    except ConnectionRefusedError:
        print("refused")
        return 4
    print(f"{(time.perf_counter() - start) * 1000:.1f} {reply.decode().strip()}")
    return 0 if reply == b"ping\n" else 5


def udp_recv(addr: str, port: int, seconds: float) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((addr, port))
        print("ready", flush=True)
        count, deadline = 0, time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                sock.recv(2048)
            except TimeoutError:
                break
            count += 1
    print(count)
    return 0


def udp_send(addr: str, port: int, count: int) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(count):
            sock.sendto(b"x", (addr, port))
    return 0


if __name__ == "__main__":
    mode, addr, port, arg = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    if mode == "serve":
        sys.exit(serve(addr, port))
    if mode == "udp-recv":
        sys.exit(udp_recv(addr, port, float(arg[0])))
    if mode == "udp-send":
        sys.exit(udp_send(addr, port, int(arg[0])))
    sys.exit(connect(addr, port, float(arg[0])))
