"""Several sites on 127.0.0.1, each with a real edgescope proxy and a small generic backend.

Every listener is a socket bound to port 0 *before* the proxies start, so each proxy's
config can name its peers' real ports. The backend is a generic aiohttp app (no OpenStack
imitation) that dispatches on path; every service of a site is the same app under the
service's own path, ``http://127.0.0.1:P/<service>/...``:

    /<svc>/echo            JSON: site, service, method, path, headers, body size and sha256
    /<svc>/items           JSON collection {"items": [...], "items_links": [...]}
    /<svc>/only/<Site>     200 at that site, 404 elsewhere
    /<svc>/status/<code>   answers <code>
    /<svc>/download/<n>    streams n bytes
    /<svc>/relay/<svc2>/<rest>  calls /<svc2>/<rest> through this site's own proxy with only
                           the X-Auth-Token it received (nova -> glance) and answers with
                           {"status": ..., "answer": <that call's JSON>}
    /<svc>/nova/<svc2>/<rest>  the same, passing X-OpenStack-Request-ID on too (as nova does)
    /<svc>/validate        validates the X-Auth-Token it received through this site's own
                           proxy (GET /identity/v3/auth/tokens, X-Subject-Token = that token,
                           X-Auth-Token = its own service token), answered like relay
    POST /identity/v3/auth/tokens   a generic token issuer (201 + X-Subject-Token header:
                                    service-token-of-<Site> for the proxies' user edgescope,
                                    <user>-token-of-<Site> for anyone else)
    GET  /identity/v3/auth/tokens   echo plus a token-shaped answer: roles [admin] when the
                                    subject token contains "admin", else [member]; 404 for
                                    a subject starting with "bad"; catalog region = the site

    async def test_x(sites):
        paris, corte = await sites("Paris", "Corte")
        await paris.get("/image/echo", headers={"X-Scope": "{image: Corte}"})
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from wiretap import Wiretap

import sitekeys
from edgescope.proxy.config import parse_config
from edgescope.replicas.extension import Replicas
from edgescope.testbed.layout import SitePlan
from edgescope.testbed.pki import Pki

SERVICES = ("image", "compute", "identity")


def bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def refused_port() -> int:
    """A loopback port with nothing listening (bound, then closed)."""
    sock = bound_socket()
    port = port_of(sock)
    sock.close()
    return port


@pytest.fixture
def refused_url() -> str:
    """A loopback URL with nothing listening: connections are refused."""
    return f"http://127.0.0.1:{refused_port()}"


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A listening socket that never accepts: connects succeed, answers never come."""
    sock = bound_socket()
    sock.listen(16)
    yield f"http://127.0.0.1:{port_of(sock)}"
    sock.close()


@pytest.fixture
async def wiretap() -> AsyncIterator[Wiretap]:
    tap = Wiretap()
    await tap.start()
    yield tap
    await tap.stop()


def catalog_of(site: str) -> list[dict[str, Any]]:
    """A one-entry catalog naming ``site`` (to see whose catalog a token answer carries)."""
    return [{"type": "image", "endpoints": [{"region": site, "url": f"http://{site}/image"}]}]


def backend_app(site: str, seen: list[dict[str, Any]], proxy_url: str = "") -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        digest, size = hashlib.sha256(), 0
        async for chunk in request.content.iter_chunked(1 << 16):
            digest.update(chunk)
            size += len(chunk)
        record = {
            "site": site,
            "service": request.match_info["svc"],
            "method": request.method,
            "path": request.path_qs,
            "headers": dict(request.headers),
            "size": size,
            "sha256": digest.hexdigest(),
        }
        seen.append(record)
        return web.json_response(record)

    async def slow(request: web.Request) -> web.Response:
        """At ``{site}``, answer only after ``?seconds=`` (a slow site); elsewhere at once."""
        seen.append({"site": site, "method": request.method, "path": request.path_qs})
        if request.match_info["site"] == site:
            await asyncio.sleep(float(request.query.get("seconds", "30")))
        return web.json_response({"site": site, "method": request.method})

    async def items(request: web.Request) -> web.Response:
        seen.append({"site": site, "path": request.path_qs, "headers": dict(request.headers)})
        return web.json_response(
            {
                "items": [{"id": f"{site}-1"}, {"id": f"{site}-2"}],
                "items_links": [{"rel": "next", "href": f"http://{site}/items?marker=2"}],
            }
        )

    async def only(request: web.Request) -> web.Response:
        body = await request.read()  # read first: a fallback must resend the whole body
        seen.append(
            {
                "site": site,
                "path": request.path_qs,
                "headers": dict(request.headers),
                "size": len(body),
            }
        )
        if request.match_info["site"] != site:
            raise web.HTTPNotFound(text=json.dumps({"message": f"not at {site}"}))
        return web.json_response(
            {"site": site, "size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        )

    async def status(request: web.Request) -> web.Response:
        seen.append({"site": site, "path": request.path_qs, "headers": dict(request.headers)})
        return web.json_response({"site": site}, status=int(request.match_info["code"]))

    async def download(request: web.Request) -> web.StreamResponse:
        size = int(request.match_info["size"])
        out = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        out.content_length = size
        await out.prepare(request)
        block = b"x" * (1 << 20)
        while size > 0:
            await out.write(block[: min(size, len(block))])
            size -= len(block)
        await out.write_eof()
        return out

    async def many(request: web.Request) -> web.StreamResponse:
        """``{"items": [{}, {}, ...]}`` with n items, streamed (a huge merge)."""
        count = int(request.match_info["count"])
        out = web.StreamResponse(headers={"Content-Type": "application/json"})
        await out.prepare(request)
        await out.write(b'{"items": [')
        block = 100_000
        for start in range(0, count, block):
            n = min(block, count - start)
            await out.write((b"{}, " * n)[: -2 if start + n == count else None])
        await out.write(b"]}")
        await out.write_eof()
        return out

    async def call_own_proxy(path: str, headers: dict[str, str]) -> web.Response:
        async with (
            aiohttp.ClientSession() as session,
            session.get(proxy_url + path, headers=headers) as answer,
        ):
            body = await answer.json(content_type=None)
        return web.json_response({"status": answer.status, "answer": body})

    async def relay(request: web.Request) -> web.Response:
        token = request.headers.get("X-Auth-Token", "")
        seen.append({"site": site, "path": request.path_qs, "headers": dict(request.headers)})
        target = f"/{request.match_info['target']}/{request.match_info['rest']}"
        return await call_own_proxy(target, {"X-Auth-Token": token})

    async def nova(request: web.Request) -> web.Response:
        """Like ``relay``, with the request id passed on as nova passes its global one."""
        headers = {"X-Auth-Token": request.headers.get("X-Auth-Token", "")}
        if "X-OpenStack-Request-ID" in request.headers:
            headers["X-OpenStack-Request-ID"] = request.headers["X-OpenStack-Request-ID"]
        seen.append({"site": site, "path": request.path_qs, "headers": dict(request.headers)})
        target = f"/{request.match_info['target']}/{request.match_info['rest']}"
        return await call_own_proxy(target, headers)

    async def validate(request: web.Request) -> web.Response:
        token = request.headers.get("X-Auth-Token", "")
        seen.append({"site": site, "path": request.path_qs, "headers": dict(request.headers)})
        return await call_own_proxy(
            "/identity/v3/auth/tokens",
            {"X-Auth-Token": f"service-of-{site}", "X-Subject-Token": token},
        )

    async def issue_token(request: web.Request) -> web.Response:
        body = await request.json()
        user = body["auth"]["identity"]["password"]["user"]["name"]
        seen.append({"site": site, "path": request.path_qs, "issued_to": user})
        # the proxies' own user gets its service token; anyone else a token naming them
        token = f"service-token-of-{site}" if user == "edgescope" else f"{user}-token-of-{site}"
        return web.json_response(
            {"token": {"expires_at": "2999-01-01T00:00:00Z", "catalog": catalog_of(site)}},
            status=201,
            headers={"X-Subject-Token": token},
        )

    async def validate_token(request: web.Request) -> web.Response:
        subject = request.headers.get("X-Subject-Token", "")
        record = {
            "site": site,
            "service": "identity",
            "method": request.method,
            "path": request.path_qs,
            "headers": dict(request.headers),
        }
        seen.append(record)
        if subject.startswith("bad"):
            return web.json_response({"error": {"code": 404, "message": "no token"}}, status=404)
        token: dict[str, Any] = {
            "user": {"id": f"id-{subject}", "name": subject},
            "project": {"name": "demo"},
            "roles": [{"name": "admin" if "admin" in subject else "member"}],
        }
        if "nocatalog" not in request.query:
            token["catalog"] = catalog_of(site)
        return web.json_response({**record, "token": token})

    app = web.Application(client_max_size=1 << 40)
    app.router.add_post("/identity/v3/auth/tokens", issue_token)
    app.router.add_get("/identity/v3/auth/tokens", validate_token)
    app.router.add_route("*", "/{svc}/items", items)
    app.router.add_route("*", "/{svc}/only/{site}", only)
    app.router.add_route("*", "/{svc}/slow/{site}", slow)
    app.router.add_route("*", "/{svc}/status/{code}", status)
    app.router.add_get("/{svc}/download/{size}", download)
    app.router.add_get("/{svc}/many/{count}", many)
    app.router.add_get("/{svc}/relay/{target}/{rest:.*}", relay)
    app.router.add_get("/{svc}/nova/{target}/{rest:.*}", nova)
    app.router.add_get("/{svc}/validate", validate)
    app.router.add_route("*", "/{svc}/{tail:.*}", echo)
    return app


@dataclass
class Site:
    """One running site: its proxy, backend, and what the backend saw."""

    name: str
    proxy: Any
    backend_url: str
    seen: list[dict[str, Any]] = field(default_factory=list)
    session: aiohttp.ClientSession | None = None
    replicas: Any = None
    """The site's replicas extension, when the sites were made with ``replicas_dir``."""

    @property
    def url(self) -> str:
        return self.proxy.url

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
        """(status, headers, decoded JSON body or raw bytes) of a call through this proxy."""
        assert self.session is not None
        async with self.session.request(method, self.url + path, **kwargs) as response:
            raw = await response.read()
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw
            return response.status, response.headers, body

    async def get(self, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
        return await self.request("GET", path, **kwargs)

    def backend_hits(self, fragment: str = "") -> list[dict[str, Any]]:
        return [r for r in self.seen if fragment in r.get("path", "")]


SitesFactory = Callable[..., Awaitable[list[Site]]]


@pytest.fixture
async def sites() -> AsyncIterator[SitesFactory]:
    """``await sites("Paris", "Corte", peers={...}, limits={...}, breaker={...})``."""
    from edgescope.proxy.server import SiteProxy  # after lang's evaluator exists

    started: list[Site] = []
    runners: list[web.AppRunner] = []
    session = aiohttp.ClientSession()

    async def make(
        *names: str,
        peer_urls: dict[str, dict[str, str]] | None = None,
        limits: dict[str, Any] | None = None,
        breaker: dict[str, Any] | None = None,
        hedging: dict[str, Any] | None = None,
        extra_peers: dict[str, dict[str, Any]] | None = None,
        identity: bool = False,
        delegate_roles: dict[str, list[str]] | None = None,
        read_timeout: float = 5.0,
        replicas_dir: Path | None = None,
        extensions: dict[str, list[Any]] | None = None,
        tls_dir: Path | None = None,
        carriers: list[dict[str, Any]] | None = None,
        plain_tokens: tuple[str, ...] = (),
    ) -> list[Site]:
        """``tls_dir``: peers talk over mutual TLS, each on its peer listener (certificates
        made there by the testbed's :class:`~edgescope.testbed.pki.Pki`). ``carriers``:
        every site's ``[[carriers]]``; ``plain_tokens``: services with ``plain_token``."""
        proxy_socks = {name: bound_socket() for name in names}
        peer_socks = {name: bound_socket() for name in names} if tls_dir else {}
        security = {}
        if tls_dir is not None:
            plans = [SitePlan.make(name, i + 1, tls_dir) for i, name in enumerate(names)]
            security = Pki(tls_dir / "pki").ensure(plans)
        result = []
        for name in names:
            seen: list[dict[str, Any]] = []
            own_proxy = f"http://127.0.0.1:{port_of(proxy_socks[name])}"
            runner = web.AppRunner(backend_app(name, seen, own_proxy), access_log=None)
            await runner.setup()
            runners.append(runner)
            backend_sock = bound_socket()
            await web.SockSite(runner, backend_sock).start()
            backend = f"http://127.0.0.1:{port_of(backend_sock)}"
            peers = [
                {
                    "name": other,
                    "public_key": sitekeys.public(other),
                    "url": (
                        f"https://127.0.0.1:{port_of(peer_socks[other])}"
                        if tls_dir
                        else f"http://127.0.0.1:{port_of(proxy_socks[other])}"
                    ),
                    "connect_timeout": 1.0,
                    "read_timeout": read_timeout,
                }
                for other in names
                if other != name
            ]
            for peer in peers:  # "@Site" means "that site's proxy" (to build loops)
                url = (peer_urls or {}).get(name, {}).get(peer["name"], peer["url"])
                if url.startswith("@"):
                    url = f"http://127.0.0.1:{port_of(proxy_socks[url[1:]])}"
                peer["url"] = url
            for peer_name, extra in (extra_peers or {}).get(name, {}).items():
                peers.append(
                    {
                        "name": peer_name,
                        "public_key": sitekeys.public(peer_name),
                        "connect_timeout": 1.0,
                        "read_timeout": read_timeout,
                        **extra,
                    }
                )
            raw: dict[str, Any] = {
                "site": name,
                "listen": "127.0.0.1:0",
                "private_key": sitekeys.private(name),
                "services": [
                    {"type": svc, "prefix": f"/{svc}", "backend": f"{backend}/{svc}"}
                    | ({"plain_token": True} if svc in plain_tokens else {})
                    for svc in SERVICES
                ],
                "carriers": carriers or [],
                "peers": peers,
                "limits": limits or {},
                "breaker": {"probe_interval": 0, **(breaker or {})},
                "hedging": hedging or {},
            }
            if identity:
                raw["identity"] = {
                    "auth_url": f"{backend}/identity/v3",
                    "username": "edgescope",
                    "password": "pw",
                    "project": "service",
                }
            if name in (delegate_roles or {}):  # this site acts for its peers' users
                roles = (delegate_roles or {})[name]
                raw["trust"] = {"sites": {p["name"]: {"delegate_roles": roles} for p in peers}}
            if tls_dir is not None:
                raw["peer_listen"] = f"127.0.0.1:{port_of(peer_socks[name])}"
                raw["tls"] = {
                    "cert_file": str(security[name].cert_file),
                    "key_file": str(security[name].tls_key_file),
                    "ca_file": str(security[name].ca_file),
                }
            replicas = Replicas.open(name, replicas_dir / name) if replicas_dir else None
            added = [*([replicas] if replicas else []), *(extensions or {}).get(name, [])]
            proxy = SiteProxy(parse_config(raw), extensions=added)
            sockets = {"main": proxy_socks[name]}
            if tls_dir is not None:
                sockets["peer"] = peer_socks[name]
            await proxy.start(sockets=sockets)
            site = Site(name, proxy, backend, seen, session, replicas)
            started.append(site)
            result.append(site)
        return result

    yield make
    await session.close()
    for site in started:
        await site.proxy.stop()
    for runner in runners:
        await runner.cleanup()
