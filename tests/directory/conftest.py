"""An edge of in-process proxies that find each other through the signed site directory.

Each site: a tiny echo backend (``/image/...`` answers its site's name) and a real proxy with
the :class:`~edgescope.directory.gossip.Directory` extension, no ``[[peers]]`` at all, one
seed (the first site), its key endorsed by the test's authority.

    edge = await make_edge(tmp_path, "Paris", "Corte", "Marseille")
    await edge.gossip(rounds=4)
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import sitekeys
from edgescope.directory import model
from edgescope.directory.gossip import Directory, DirectoryConfig, sign_sync
from edgescope.proxy import keys
from edgescope.proxy.config import parse_config
from edgescope.proxy.server import SiteProxy


def bound() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def echo_app(site: str) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"site": site, "path": request.path_qs})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


@dataclass
class Edge:
    tmp: Path
    authority: keys.Ed25519PrivateKey
    session: aiohttp.ClientSession
    proxies: dict[str, SiteProxy] = field(default_factory=dict)
    directories: dict[str, Directory] = field(default_factory=dict)
    runners: list[web.AppRunner] = field(default_factory=list)

    def url(self, site: str) -> str:
        return self.proxies[site].url

    async def add(
        self,
        site: str,
        seeds: list[str],
        *,
        authority: Any = None,
        trust: dict[str, Any] | None = None,
    ) -> Directory:
        """``trust``: the site's ``[trust]`` (default: learned sites route and gossip)."""
        backend_sock, proxy_sock = bound(), bound()
        runner = web.AppRunner(echo_app(site), access_log=None)
        await runner.setup()
        await web.SockSite(runner, backend_sock).start()
        self.runners.append(runner)
        key = keys.load_private(sitekeys.private(site))
        cert = model.endorse(
            authority or self.authority, site, key.public_key(), expires=time.time() + 3600
        )
        endorsement = self.tmp / f"{site}.endorsement"
        endorsement.write_text(model.canonical(cert.to_json()).decode())
        url = f"http://127.0.0.1:{proxy_sock.getsockname()[1]}"
        config = parse_config(
            {
                "site": site,
                "listen": "127.0.0.1:0",
                "private_key": sitekeys.private(site),
                "services": [
                    {
                        "type": "image",
                        "prefix": "/image",
                        "backend": f"http://127.0.0.1:{backend_sock.getsockname()[1]}",
                    }
                ],
                "breaker": {"probe_interval": 0},
                "trust": {"learned": ["route", "directory"]} if trust is None else trust,
            }
        )
        settings = DirectoryConfig(
            self.tmp / site,
            url,
            endorsement,
            ((authority or self.authority).public_key(),),
            tuple(self.url(s) for s in seeds),
            gossip_interval=0,
        )
        directory = Directory(site, config.private_key, settings, ["image"])
        proxy = SiteProxy(config, extensions=[directory])
        await proxy.start(sockets={"main": proxy_sock})
        self.proxies[site], self.directories[site] = proxy, directory
        return directory

    async def gossip(self, rounds: int = 1) -> None:
        for _ in range(rounds):
            for directory in list(self.directories.values()):
                await directory.gossip_round()

    async def offer(
        self, site: str, doc: Any, *, sender: str, key: Any = None, data: bytes | None = None
    ) -> tuple[int, Any]:
        """POST ``doc`` to ``site``'s sync endpoint, signed as ``sender`` (its test key, or
        ``key``): what a correctly signed, possibly malicious, peer can send."""
        body = data if data is not None else json.dumps(doc).encode()
        signer = key or keys.load_private(sitekeys.private(sender))
        headers = {"Content-Type": "application/json", **sign_sync(signer, sender, body)}
        async with self.session.post(
            self.url(site) + "/edgescope/directory/sync", data=body, headers=headers
        ) as answer:
            return answer.status, await answer.json()

    async def get(self, site: str, scope: str) -> tuple[int, Any]:
        async with self.session.get(
            self.url(site) + "/image/x", headers={"X-Scope": scope}
        ) as answer:
            return answer.status, await answer.json()


EdgeFactory = Callable[..., Awaitable[Edge]]


@pytest.fixture
async def make_edge(tmp_path: Path) -> AsyncIterator[EdgeFactory]:
    edges: list[Edge] = []
    session = aiohttp.ClientSession()

    async def make(*sites: str) -> Edge:
        edge = Edge(tmp_path, keys.generate(), session)
        edges.append(edge)
        for i, site in enumerate(sites):
            await edge.add(site, seeds=[sites[0]] if i else [])
        return edge

    yield make
    await session.close()
    for edge in edges:
        for proxy in edge.proxies.values():
            await proxy.stop()
        for runner in edge.runners:
            await runner.cleanup()
