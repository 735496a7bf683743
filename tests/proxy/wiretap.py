"""A relay between two proxies that records every request's headers: what a peer sees."""

from __future__ import annotations

import socket

import aiohttp
from aiohttp import web


def _bound() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class Wiretap:
    """A relay between two proxies that records every request's headers (a peer's view)."""

    def __init__(self) -> None:
        self.sock = _bound()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.target = ""
        self.heard: list[dict[str, str]] = []
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def relay(request: web.Request) -> web.Response:
            self.heard.append(dict(request.headers))
            headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
            async with (
                aiohttp.ClientSession(auto_decompress=False) as session,
                session.request(
                    request.method,
                    self.target + request.raw_path,
                    headers=headers,
                    data=await request.read(),
                ) as answer,
            ):
                body = await answer.read()
                out = {k: v for k, v in answer.headers.items() if k.lower() != "transfer-encoding"}
                return web.Response(status=answer.status, body=body, headers=out)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", relay)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, self.sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
