"""A malicious peer: correctly signed (its own Ed25519 key, which the victim's config names),
it sends anything, and answers the hops sent to it with whatever the test says.

    evil = EvilPeer("Evil", "Paris", paris_url)
    status, doc = await evil.send("POST", REPLICA_SETS_PATH, json={"set": {...}})
    evil.answers["POST"] = (201, {"thing": {"id": victim_id}})   # what it says it created
    await evil.serve()                                           # evil.url: its proxy's URL
"""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
from aiohttp import web

import sitekeys
from edgescope.proxy.keys import load_private
from edgescope.proxy.protocol import sign_hop
from replicas.conftest import bound_socket


class EvilPeer:
    def __init__(self, name: str, victim: str, victim_url: str) -> None:
        self.name, self.victim, self.victim_url = name, victim, victim_url
        self.key = load_private(sitekeys.private(name))
        self.answers: dict[str, tuple[int, Any]] = {}
        """Method -> (status, JSON) it answers the victim's hops with (default 404)."""
        self.received: list[tuple[str, str]] = []
        self._runner: web.AppRunner | None = None
        self.sock = bound_socket()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    async def send(
        self,
        method: str,
        path: str,
        *,
        json_doc: Any = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """A signed hop to the victim (the signature binds the body when there is one)."""
        if json_doc is not None:
            body = json.dumps(json_doc).encode()
        out = {"Content-Type": "application/json", **(headers or {})}
        out.update(
            sign_hop(self.key, method, path, self.name, self.victim, 1, now=time.time(), body=body)
        )
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.victim_url + path, data=body, headers=out) as response,
        ):
            raw = await response.read()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw.decode(errors="replace")

    async def serve(self) -> None:
        async def anything(request: web.Request) -> web.Response:
            self.received.append((request.method, request.path_qs))
            status, doc = self.answers.get(request.method, (404, {"message": "evil"}))
            return web.json_response(doc, status=status)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", anything)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, self.sock).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self.sock.close()
