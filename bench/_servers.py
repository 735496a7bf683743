"""Benchmark servers, each run as its own process: ``python -m bench._servers MODE ...``.

    sites --count N [--delay-ms D] [--slowest-ms S] [--black-hole]
        N listening endpoints in ONE process (simulated sites). Endpoint i sleeps D ms
        (the last one S ms) and answers ``{"items": [{"id": i}]}``, or 404 when the path
        contains ``missing<i>``. With --black-hole one more socket listens, never accepts.
    forward-aiohttp --backend URL      a minimal streaming forwarder: aiohttp server + client
    forward-asgi --backend URL --server uvicorn|granian
                                       the same forwarder as an ASGI app with httpx

Each prints one JSON line on stdout (its ports) once it listens, then serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
from typing import Any

import aiohttp
from aiohttp import web


def _socket() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


async def sites(count: int, delay_ms: float, slowest_ms: float, black_hole: bool) -> None:
    socks = [_socket() for _ in range(count)]
    ports = [s.getsockname()[1] for s in socks]
    delay_of = {port: delay_ms / 1000 for port in ports}
    delay_of[ports[-1]] = slowest_ms / 1000
    index_of = {port: i for i, port in enumerate(ports)}

    async def handle(request: web.Request) -> web.Response:
        port = request.transport.get_extra_info("sockname")[1]  # type: ignore[union-attr]
        if delay_of[port]:
            await asyncio.sleep(delay_of[port])
        if f"missing{index_of[port]}" in request.path:
            return web.json_response({"error": "missing"}, status=404)
        await request.read()
        return web.json_response({"items": [{"id": index_of[port]}]})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for sock in socks:
        await web.SockSite(runner, sock, backlog=1024).start()
    hole = None
    if black_hole:
        hole = _socket()
        hole.listen(512)
    print(
        json.dumps({"ports": ports, "black_hole": hole.getsockname()[1] if hole else None}),
        flush=True,
    )
    await asyncio.Event().wait()


async def forward_aiohttp(backend: str) -> None:
    session = aiohttp.ClientSession(auto_decompress=False)

    async def handle(request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with session.request(
            request.method,
            backend + request.path_qs,
            headers=headers,
            data=request.content if request.body_exists else None,
        ) as up:
            out = web.StreamResponse(status=up.status)
            for name in ("Content-Type", "Content-Length"):
                if name in up.headers:
                    out.headers[name] = up.headers[name]
            await out.prepare(request)
            async for chunk in up.content.iter_chunked(65536):
                await out.write(chunk)
            await out.write_eof()
            return out

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = _socket()
    await web.SockSite(runner, sock).start()
    print(json.dumps({"ports": [sock.getsockname()[1]]}), flush=True)
    await asyncio.Event().wait()


def asgi_app() -> Any:
    """The forwarder as a raw ASGI app with httpx (the uvicorn/granian candidate)."""
    import httpx

    backend = os.environ["BENCH_BACKEND"]
    client = httpx.AsyncClient(base_url=backend, timeout=30)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return

        async def body() -> Any:
            more = True
            while more:
                message = await receive()
                more = message.get("more_body", False)
                yield message.get("body", b"")

        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"host"]
        path = scope["raw_path"].decode() + (
            "?" + scope["query_string"].decode() if scope["query_string"] else ""
        )
        request = client.build_request(scope["method"], path, headers=headers, content=body())
        response = await client.send(request, stream=True)
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [
                    (k, v)
                    for k, v in response.headers.raw
                    if k.lower() in (b"content-type", b"content-length")
                ],
            }
        )
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        await response.aclose()

    return app


def forward_asgi(backend: str, server: str) -> None:
    sock = _socket()
    port = sock.getsockname()[1]
    sock.close()
    os.environ["BENCH_BACKEND"] = backend
    print(json.dumps({"ports": [port]}), flush=True)
    if server == "uvicorn":
        import uvicorn

        uvicorn.run(
            "bench._servers:asgi_app",
            factory=True,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    else:
        from granian import Granian
        from granian.constants import Interfaces

        Granian(
            "bench._servers:asgi_app",
            factory=True,
            address="127.0.0.1",
            port=port,
            interface=Interfaces.ASGI,
            workers=1,
            log_enabled=False,
        ).serve()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._servers")
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("sites")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--slowest-ms", type=float, default=0.0)
    p.add_argument("--black-hole", action="store_true")
    p = sub.add_parser("forward-aiohttp")
    p.add_argument("--backend", required=True)
    p = sub.add_parser("forward-asgi")
    p.add_argument("--backend", required=True)
    p.add_argument("--server", choices=("uvicorn", "granian"), required=True)
    args = parser.parse_args(argv)
    if args.mode == "sites":
        asyncio.run(sites(args.count, args.delay_ms, args.slowest_ms, args.black_hole))
    elif args.mode == "forward-aiohttp":
        asyncio.run(forward_aiohttp(args.backend))
    else:
        forward_asgi(args.backend, args.server)


if __name__ == "__main__":
    main(sys.argv[1:])
