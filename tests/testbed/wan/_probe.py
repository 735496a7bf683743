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


if __name__ == "__main__":
    mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "serve":
        sys.exit(serve(addr, port))
    sys.exit(connect(addr, port, float(sys.argv[4])))
