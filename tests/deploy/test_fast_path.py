"""The HAProxy fast path, live: Debian's haproxy runs the config edgescope generates, in front
of a real proxy and a backend that reports what reached it.

The one property: a call goes through edgescope exactly when edgescope's own carrier reader
finds a scope carrier in its headers (``read_scope_text``, or a scope error it would answer),
so no scoped call is served locally by HAProxy and no unscoped one pays for edgescope.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

import sitekeys
from edgescope.deploy.haproxy import BYPASS_HEADER, HaproxySettings, site_config
from edgescope.errors import EdgescopeError
from edgescope.proxy.carriers import (
    REQUEST_ID_HEADER,
    attach_piggyback,
    is_correlation_id,
    new_correlation_id,
    read_scope_text,
)
from edgescope.proxy.config import parse_config
from edgescope.proxy.server import SiteProxy
from loopback import reserve_port

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")
SCOPE = "{image: Paris}"
FAST_CHECK = "check inter 100ms fall 3 rise 1"


def through_edgescope(headers: Mapping[str, str]) -> bool:
    """What edgescope itself makes of these headers: a carrier (even a broken one), an id it
    may remember a scope for (one it minted), or none. A baggage that mentions ``scope`` at
    all goes to edgescope too, whatever its spacing (issue 20, finding 10)."""
    wire = CIMultiDict(headers)  # header names are case-insensitive, as on the wire
    if is_correlation_id(wire.get(REQUEST_ID_HEADER)) or "scope" in wire.get("baggage", ""):
        return True
    try:
        return read_scope_text(wire, 4096) is not None
    except EdgescopeError:
        return True


async def recorder(port: int) -> web.AppRunner:
    """A backend that answers which headers reached it (edgescope adds X-Forwarded-Host)."""

    async def seen(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "via_edgescope": "X-Forwarded-Host" in request.headers,
                "scope": request.headers.get("X-Scope"),
                "token": request.headers.get("X-Auth-Token"),
                "request_id": request.headers.get(REQUEST_ID_HEADER),
            }
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", seen)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


class Site:
    def __init__(self, tmp: Path, on_down: str) -> None:
        self.tmp = tmp
        self.held = {k: reserve_port() for k in ("front", "main", "image", "backend")}
        self.ports = {k: int(sock.getsockname()[1]) for k, sock in self.held.items()}
        self.on_down = on_down
        raw = {
            "site": "Paris",
            "listen": f"127.0.0.1:{self.ports['main']}",
            "private_key": sitekeys.private("Paris"),
            "services": [
                {
                    "type": "image",
                    "port": self.ports["image"],
                    "backend": f"http://127.0.0.1:{self.ports['backend']}",
                }
            ],
            "breaker": {"probe_interval": 0},
            "haproxy": {
                "on_edgescope_down": on_down,
                "ports": {"image": self.ports["front"]},
                "check": FAST_CHECK,
            },
        }
        self.config = parse_config(raw)
        self.proxy: SiteProxy | None = None
        self.haproxy: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['front']}"

    async def start_proxy(self) -> None:
        self.proxy = SiteProxy(self.config)
        await self.proxy.start()

    async def stop_proxy(self) -> None:
        if self.proxy is not None:
            await self.proxy.stop()
            self.proxy = None

    async def start_haproxy(self) -> None:
        settings_ = HaproxySettings.parse(self.config.extension_tables["haproxy"])
        conf = self.tmp / "haproxy.cfg"
        conf.write_text(site_config(self.config, settings_, bind_host="127.0.0.1"))
        checked = await asyncio.create_subprocess_exec(
            "haproxy", "-c", "-f", str(conf),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await checked.communicate()
        assert checked.returncode == 0, out.decode()
        self.haproxy = await asyncio.create_subprocess_exec(
            "haproxy", "-db", "-f", str(conf),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip

    async def wait_edgescope(self, up: bool) -> None:
        """Until HAProxy's health check has seen the proxy come up (or go down). Down is
        HAProxy's own 503 with Retry-After: until its check has marked the proxy down, it
        still tries it and answers a bare 503 of its own when the connection is refused."""
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                with contextlib.suppress(aiohttp.ClientConnectorError):  # not listening yet
                    async with session.get(self.url + "/x", headers={"X-Scope": SCOPE}) as response:
                        marked_down = response.status == 503 and "Retry-After" in response.headers
                        if response.status != 503 if up else marked_down:
                            return
                await asyncio.sleep(0.1)
        raise AssertionError(f"HAProxy never saw edgescope {'up' if up else 'down'}")


@pytest.fixture
async def site_factory(tmp_path: Path) -> AsyncIterator[Callable[[str], Any]]:
    made: list[Site] = []
    runners: list[web.AppRunner] = []

    async def make(on_down: str = "closed") -> Site:
        site = Site(tmp_path / str(len(made)), on_down)
        site.tmp.mkdir()
        made.append(site)
        runners.append(await recorder(site.ports["backend"]))
        await site.start_proxy()
        await site.start_haproxy()
        await site.wait_edgescope(up=True)
        return site

    yield make
    for site in made:
        await site.stop_proxy()
        if site.haproxy is not None:
            with contextlib.suppress(ProcessLookupError):
                site.haproxy.terminate()
            await site.haproxy.wait()
    for runner in runners:
        await runner.cleanup()
    for site in made:
        for sock in site.held.values():
            sock.close()


async def route(site: Site, headers: Mapping[str, str]) -> tuple[int, CIMultiDict[str], Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(site.url + "/v2/images", headers=dict(headers)) as response,
    ):
        raw = await response.read()
        try:
            body = json.loads(raw)
        except ValueError:  # HAProxy's own page while its check catches up
            body = raw.decode(errors="replace")
        return response.status, CIMultiDict(response.headers), body


def via_edgescope(status: int, body: Any) -> bool:
    """The backend saw edgescope's headers, or edgescope answered a broken carrier itself."""
    if status == 400:
        return bool(body["error"]["title"] == "Bad Scope")
    assert status == 200, body
    return bool(body["via_edgescope"])


PIGGY = attach_piggyback("gAAAAtoken", SCOPE)
CASES = [
    {},
    {"X-Scope": SCOPE},
    {"x-scope": SCOPE},
    {"X-Scope": ""},
    {"X-Auth-Token": "gAAAAtoken"},
    {"X-Auth-Token": PIGGY},
    {"X-Subject-Token": PIGGY},
    {"X-Auth-Token": "gAAAA~scope~!!bad"},
    {"X-Service-Token": PIGGY},  # a service's own token: never a carrier
    {"baggage": "userid=alice"},
    {"baggage": "scope=%7Bimage%3A%20Paris%7D"},
    {"baggage": "userid=alice, scope=%7Bimage%3A%20Paris%7D;p=1"},
    {"baggage": " scope =%7Bimage%3A%20Paris%7D"},
    {"baggage": "myscope=1,scopes=2"},
    {"X-OpenStack-Request-ID": "req-6a0d4c52-2f5b-4c2e-9a51-0d3c7c0e3f1a"},  # OpenStack's
    {"X-OpenStack-Request-ID": new_correlation_id()},  # edgescope's: may carry a scope
    {"x-openstack-request-id": new_correlation_id(), "X-Auth-Token": "gAAAAtoken"},
    {"X-OpenStack-Request-ID": "req-6a0d4c52-2f5b-8c2e-9a51"},  # not an id at all
    {"X-Auth-Token": "gAAAA-scope-x"},
    *(
        {"baggage": odd}
        for odd in (
            'a="b,scope=%7Bimage%3A%20Paris%7D,c="',  # a quoted comma
            "\u00a0scope=%7Bimage%3A%20Paris%7D",  # a no-break space before scope
            "scope\u3000=%7Bimage%3A%20Paris%7D",  # an ideographic space before =
        )
    ),
]


async def test_every_carrier_and_only_a_carrier_takes_the_call_to_edgescope(
    site_factory: Callable[[str], Any],
) -> None:
    site = await site_factory("closed")
    for headers in CASES:
        status, _, body = await route(site, headers)
        assert via_edgescope(status, body) == through_edgescope(headers), (headers, status, body)


async def test_baggage_haproxy_once_read_apart_from_edgescope_reaches_edgescope(
    site_factory: Callable[[str], Any],
) -> None:
    """Issue 20, finding 10: HAProxy's ACL did not see a scope in these (it keeps a quoted
    comma inside one value; it trims ASCII space only), while edgescope read one. Now each
    reaches edgescope: the quoted comma's scope is read, an odd space is a clear 400."""
    site = await site_factory("closed")
    status, _, body = await route(site, {"baggage": 'a="b,scope=%7Bimage%3A%20Paris%7D,c="'})
    assert status == 200 and body["via_edgescope"], body
    assert body["scope"].startswith("{image: Paris"), body
    for odd in ("\u00a0scope=%7Bimage%3A%20Paris%7D", "scope\u3000=%7Bimage%3A%20Paris%7D"):
        status, _, body = await route(site, {"baggage": odd})
        assert status == 400 and body["error"]["title"] == "Bad Scope", body
        assert "whitespace other than spaces and tabs" in body["error"]["message"]


async def test_a_downstream_call_with_only_the_request_id_reaches_edgescope_and_its_scope(
    site_factory: Callable[[str], Any],
) -> None:
    """A service's own call made for a scoped request (nova-scheduler -> placement) carries
    nothing but the request id edgescope minted: HAProxy sends it to edgescope, which
    routes it by the scope it remembered, as if HAProxy were not there."""
    site = await site_factory("closed")
    status, _, first = await route(site, {"X-Scope": SCOPE})
    assert status == 200 and first["via_edgescope"] and is_correlation_id(first["request_id"])
    status, _, downstream = await route(site, {"X-OpenStack-Request-ID": first["request_id"]})
    assert status == 200 and downstream["via_edgescope"], downstream
    assert downstream["scope"] is not None and "Paris" in downstream["scope"], downstream
    status, _, unscoped = await route(site, {})
    assert not unscoped["via_edgescope"] and not is_correlation_id(unscoped["request_id"])


def baggage_shapes(count: int = 80) -> list[str]:
    """Baggage values built from the pieces a parser may trip on (seeded: reproducible)."""
    rng = random.Random(12)
    pieces = [" ", "=", ",", ";", "scope", "scope=", "%7B", "x", "\t", "a=1"]
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 6))) for _ in range(count)]


async def test_baggage_and_tokens_of_any_shape_route_as_edgescope_reads_them(
    site_factory: Callable[[str], Any],
) -> None:
    site = await site_factory("closed")
    tokens = ["t", PIGGY, "t~scope", "~scope~"]
    for i, baggage in enumerate(baggage_shapes()):
        headers = {"baggage": baggage, "X-Auth-Token": tokens[i % len(tokens)]}
        status, _, body = await route(site, headers)
        assert via_edgescope(status, body) == through_edgescope(headers), (headers, status, body)


async def test_fail_closed_answers_a_clear_503_and_unscoped_calls_still_pass(
    site_factory: Callable[[str], Any],
) -> None:
    site = await site_factory("closed")
    await site.stop_proxy()
    await site.wait_edgescope(up=False)
    status, headers, body = await route(site, {"X-Scope": SCOPE})
    assert status == 503 and headers["Retry-After"] == "5"
    assert body["error"]["title"] == "Site Unreachable"
    assert "no proxy of this site is up" in body["error"]["message"]
    status, _, body = await route(site, {"X-Auth-Token": "plain"})
    assert status == 200 and body["via_edgescope"] is False
    await site.start_proxy()  # back: scoped calls go through edgescope again
    await site.wait_edgescope(up=True)
    status, _, body = await route(site, {"X-Scope": SCOPE})
    assert status == 200 and body["via_edgescope"] is True


async def test_fail_open_serves_locally_without_any_carrier_and_says_so(
    site_factory: Callable[[str], Any],
) -> None:
    site = await site_factory("open")
    await site.stop_proxy()
    for _ in range(50):  # until HAProxy's check has marked the proxy down
        status, headers, body = await route(site, {"X-Scope": SCOPE, "X-Auth-Token": PIGGY})
        if BYPASS_HEADER in headers:
            break
        await asyncio.sleep(0.1)
    assert status == 200 and BYPASS_HEADER in headers
    assert body == {
        "via_edgescope": False,
        "scope": None,
        "token": "gAAAAtoken",
        "request_id": None,
    }
