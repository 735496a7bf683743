"""Sites on 127.0.0.1 with real proxies (replicas on) and a generic "resource" backend.

The backend is a small aiohttp app, not an imitation of any OpenStack API: it keeps
items in memory and gives each created item its own random id, like any service would.

    POST   /<svc>/things            {"thing": {...}} -> 201 {"thing": {"id": <random>, ...}}
    GET    /<svc>/things[?name=x]   {"things": [...]} (or the next of ``Site.listing_answers``)
    GET    /<svc>/things/<id>       {"thing": {...}} or 404
    PATCH  /<svc>/things/<id>       merge {"thing": {...}} into the item
    DELETE /<svc>/things/<id>       204 or 404 (400 while the item's "busy_for" counts down)

Every peer URL goes through a :class:`Link` (a TCP relay) that a test can ``cut()`` and
``heal()``: a partition between proxies, on loopback, with no root needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import sitekeys
from edgescope.proxy.config import parse_config
from edgescope.proxy.server import SiteProxy
from edgescope.replicas.extension import Replicas

SERVICE = "image"
SERVICES = ("image", "compute")
"""Both served by the same generic backend, each under its own prefix."""


def bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def resource_app(  # type: ignore[no-untyped-def]
    site: str,
    items: dict[str, dict[str, Any]],
    seen: list[tuple[str, str]],
    made: list[str] | None = None,
    listing_answers: list[int] | None = None,
):
    """``made``, if given, gets the id of every item created, in order (deleted or not);
    ``listing_answers``: statuses the next listings by name answer instead (first first)."""

    async def collection(request: web.Request) -> web.Response:
        seen.append((request.method, request.path_qs))
        if request.method == "POST":
            doc = await request.json()
            if doc["thing"].get("slow_at") == site:  # lets a test act between two answers
                await asyncio.sleep(float(doc["thing"].get("delay", 0.5)))
            if doc["thing"].get("refuse_at") == site:  # lets a test make one member refuse
                return web.json_response({"message": f"refused at {site}"}, status=403)
            item = {**doc["thing"], "id": uuid.uuid4().hex[:12]}
            items[item["id"]] = item
            if made is not None:
                made.append(item["id"])
            return web.json_response({"thing": item}, status=201)
        name = request.query.get("name")
        if name is not None and listing_answers:
            status = listing_answers.pop(0)
            return web.json_response({"message": f"listing answered {status}"}, status=status)
        found = [i for i in items.values() if name is None or i.get("name") == name]
        return web.json_response({"things": found})

    async def one(request: web.Request) -> web.Response:
        seen.append((request.method, request.path_qs))
        item = items.get(request.match_info["id"])
        if item is None:
            return web.json_response({"message": f"no such thing at {site}"}, status=404)
        if request.method == "DELETE":
            if item.get("busy_for", 0) > 0:  # like cinder's 400 while a volume is 'creating'
                item["busy_for"] -= 1
                return web.json_response({"message": f"busy at {site}"}, status=400)
            del items[item["id"]]
            return web.Response(status=204)
        if request.method in ("PATCH", "PUT"):
            doc = await request.json()
            item.update({k: v for k, v in doc["thing"].items() if k != "id"})
        return web.json_response({"thing": item})

    async def issue_token(request: web.Request) -> web.Response:
        user = (await request.json())["auth"]["identity"]["password"]["user"]["name"]
        token = f"service-token-of-{site}" if user == "edgescope" else f"{user}-token-of-{site}"
        return web.json_response(
            {"token": {"expires_at": "2999-01-01T00:00:00Z"}},
            status=201,
            headers={"X-Subject-Token": token},
        )

    async def validate_token(request: web.Request) -> web.Response:
        """A token is valid unless it starts with "bad"; "admin" in it means role admin."""
        subject = request.headers.get("X-Subject-Token", "")
        if subject.startswith("bad"):
            return web.json_response({"error": {"code": 404}}, status=404)
        role = "admin" if "admin" in subject else "member"
        return web.json_response({"token": {"roles": [{"name": role}], "user": {"name": subject}}})

    app = web.Application()
    app.router.add_post("/identity/v3/auth/tokens", issue_token)
    app.router.add_get("/identity/v3/auth/tokens", validate_token)
    app.router.add_route("*", "/{svc}/things", collection)
    app.router.add_route("*", "/{svc}/things/{id}", one)
    return app


class Link:
    """A TCP relay to a proxy; ``cut()`` refuses and drops connections, ``heal()`` restores."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.sock = bound_socket()
        self.port = int(self.sock.getsockname()[1])
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.answered = bytearray()
        """The last 64 KiB relayed back from the proxy (a test waits for an answer to pass)."""
        self.swallowing = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def heal(self) -> None:
        if self.swallowing:
            self.swallowing = False
            await self.cut()
        if self._server is None:
            self._server = await asyncio.start_server(self._relay, sock=self._listening())

    async def swallow(self) -> None:
        """Accept and read every new connection, pass nothing on, answer nothing: a request
        sent that never gets an answer (in doubt for its sender). ``heal()`` ends it."""
        await self.cut()
        self.swallowing = True
        self._server = await asyncio.start_server(self._relay, sock=self._listening())

    def _listening(self) -> socket.socket:
        if self.sock.fileno() == -1:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(("127.0.0.1", self.port))
        return self.sock

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.swallowing:
            self._writers.add(writer)
            with contextlib.suppress(OSError):
                while await reader.read(65536):
                    pass
            writer.close()
            self._writers.discard(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(
            src: asyncio.StreamReader, dst: asyncio.StreamWriter, seen: bytearray | None = None
        ) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
                    if seen is not None:
                        seen += data
                        del seen[: max(0, len(seen) - 65536)]
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer, self.answered))
        self._writers.difference_update((writer, up_writer))


@dataclass
class Site:
    name: str
    proxy: SiteProxy
    items: dict[str, dict[str, Any]]
    seen: list[tuple[str, str]]
    session: aiohttp.ClientSession
    state_dir: Path
    replicas: Replicas
    links: dict[str, Link] = field(default_factory=dict)
    """Links this site uses to reach each peer."""
    backend: web.BaseSite | None = None
    """The backend's listening site: ``backend_down()`` closes its port (like a restarting
    service: connections refused), ``backend_up()`` opens it again on the same port."""
    backend_port: int = 0
    runner: web.AppRunner | None = None
    made: list[str] = field(default_factory=list)
    """The id of every item the backend created, in order, deleted since or not: a test
    can check that a create happened without catching the item while it exists."""
    listing_answers: list[int] = field(default_factory=list)
    """Statuses (e.g. 503, 401) the backend's next listings by name answer, one each."""

    async def backend_down(self) -> None:
        assert self.backend is not None and self.runner is not None
        await self.backend.stop()
        for handler in list(self.runner.server.connections if self.runner.server else ()):
            handler.force_close()  # a restarting service drops its kept-alive connections too

    async def backend_up(self) -> None:
        assert self.backend is not None
        assert self.runner is not None
        self.backend = web.TCPSite(self.runner, "127.0.0.1", self.backend_port, reuse_address=True)
        await self.backend.start()

    async def call(
        self, method: str, path: str, scope: str, service: str = SERVICE, **kwargs: Any
    ) -> tuple[int, Any, Any]:
        headers = {"X-Scope": scope, **kwargs.pop("headers", {})}
        async with self.session.request(
            method, self.proxy.url + f"/{service}" + path, headers=headers, **kwargs
        ) as response:
            raw = await response.read()
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw
            return response.status, response.headers, body


SitesFactory = Callable[..., Awaitable[list[Site]]]


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a registry lives: a state folder (SQLite) or a MariaDB database URL."""
    if request.param == "sqlite":
        return str(tmp_path)
    make: Callable[[], str] = request.getfixturevalue("mariadb_database")
    return make()


@pytest.fixture
async def replica_sites(tmp_path: Path) -> AsyncIterator[SitesFactory]:
    """``paris, corte = await replica_sites("Paris", "Corte")``; links start healed."""
    started: list[Site] = []
    runners: list[web.AppRunner] = []
    links: list[Link] = []
    session = aiohttp.ClientSession()

    async def make(
        *names: str,
        replay_interval: float = 0.2,
        breaker: dict[str, Any] | None = None,
        extensions: Callable[[str, Replicas], list[Any]] | None = None,
    ) -> list[Site]:
        """``extensions(site, replicas)``: more extensions for that site's proxy."""
        proxy_socks = {n: bound_socket() for n in names}
        for name in names:
            items: dict[str, dict[str, Any]] = {}
            seen: list[tuple[str, str]] = []
            made: list[str] = []
            listing_answers: list[int] = []
            app = resource_app(name, items, seen, made, listing_answers)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            runners.append(runner)
            backend_sock = bound_socket()
            backend_site = web.SockSite(runner, backend_sock)
            await backend_site.start()
            backend = f"http://127.0.0.1:{backend_sock.getsockname()[1]}"
            site_links = {
                other: Link(int(proxy_socks[other].getsockname()[1]))
                for other in names
                if other != name
            }
            for link in site_links.values():
                await link.heal()
                links.append(link)
            raw = {
                "site": name,
                "listen": "127.0.0.1:0",
                "private_key": sitekeys.private(name),
                "services": [
                    {"type": svc, "prefix": f"/{svc}", "backend": f"{backend}/{svc}"}
                    for svc in SERVICES
                ],
                "peers": [
                    {
                        "name": o,
                        "url": link.url,
                        "public_key": sitekeys.public(o),
                        "connect_timeout": 0.5,
                        "read_timeout": 5.0,
                    }
                    for o, link in site_links.items()
                ],
                "breaker": {"probe_interval": 0, "open_seconds": 0.2, **(breaker or {})},
                "identity": {
                    "auth_url": f"{backend}/identity/v3",
                    "username": "edgescope",
                    "password": "pw",
                    "project": "service",
                },
            }
            state = tmp_path / name
            replicas = Replicas.open(name, state, replay_interval=replay_interval)
            more = extensions(name, replicas) if extensions is not None else []
            proxy = SiteProxy(parse_config(raw), extensions=[replicas, *more])
            await proxy.start(sockets={"main": proxy_socks[name]})
            site = Site(name, proxy, items, seen, session, state, replicas, site_links)
            site.backend, site.backend_port = backend_site, int(backend_sock.getsockname()[1])
            site.runner, site.made, site.listing_answers = runner, made, listing_answers
            started.append(site)
        return started[-len(names) :]

    yield make
    await session.close()
    for site in started:
        await site.proxy.stop()
    for link in links:
        await link.cut()
        link.sock.close()
    for runner in runners:
        await runner.cleanup()
