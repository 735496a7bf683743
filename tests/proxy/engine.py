"""The engine of one proxy on an in-memory transport: no socket, no sleep.

Builds the real :class:`Sender` and :class:`Dispatcher` of site Paris (peers Marseille and
Corte) on a :class:`MemoryTransport`, and runs calls through them the way ``server.py``
does (a request made in memory, the scope parsed, the route planned):

    engine = Engine({"Paris": answer(200, b"[1]"), "Corte": unreachable()})
    response = await engine.call("GET", "/image/v2/images", "{image: Paris | Corte}")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

import sitekeys
from edgescope.lang import parse_scope
from edgescope.proxy.call import Call
from edgescope.proxy.carriers import ScopeMemory
from edgescope.proxy.config import ProxyConfig, parse_config
from edgescope.proxy.delegation import Delegation
from edgescope.proxy.dispatch import Dispatcher
from edgescope.proxy.extension import Extension, ExtensionSet, SiteCall
from edgescope.proxy.forward import Upstream
from edgescope.proxy.memory import Handler, MemoryTransport, client_request
from edgescope.proxy.metrics import ProxyMetrics
from edgescope.proxy.route import plan_route
from edgescope.proxy.sender import Sender

SITE = "Paris"
PEERS = ("Marseille", "Corte")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def engine_config(**tables: Any) -> ProxyConfig:
    raw: dict[str, Any] = {
        "site": SITE,
        "listen": "127.0.0.1:0",
        "private_key": sitekeys.private(SITE),
        "services": [{"type": "image", "prefix": "/image", "backend": "http://paris.test/image"}],
        "peers": [
            {"name": p, "url": f"http://{p.lower()}.test", "public_key": sitekeys.public(p)}
            for p in PEERS
        ],
        "breaker": {"probe_interval": 0},
        **tables,
    }
    return parse_config(raw)


class Engine:
    """Paris's dispatcher and sender, every site reached through ``transport``."""

    def __init__(
        self,
        sites: dict[str, Handler],
        *,
        extensions: Sequence[Extension] = (),
        **tables: Any,
    ) -> None:
        self.config = engine_config(**tables)
        self.transport = MemoryTransport(sites)
        self.metrics = ProxyMetrics(SITE)
        self.delegation = Delegation(self.config, None)
        self.sender = Sender(
            self.config, Upstream(), self.metrics, None, self.delegation, client=self.transport
        )
        self.extensions = ExtensionSet(extensions)
        if self.extensions.handles(SiteCall):
            self.sender.own_calls = self.extensions.site_call
        self.clock = Clock()
        self.dispatcher = Dispatcher(
            self.config,
            self.sender,
            self.metrics,
            self.delegation,
            ScopeMemory(),
            self.extensions,
            clock=self.clock,
        )
        self.last: Call | None = None

    async def call(
        self,
        method: str,
        path: str,
        scope: str | None = None,
        *,
        mode: str = "strict",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        """``method path`` from a client with ``scope`` (for the ``image`` service)."""
        out = dict(headers or {})
        if body is not None and not any(k.lower() == "content-type" for k in out):
            out["Content-Type"] = "application/json"
        request = client_request(method, path, out, body)
        service_path = path.removeprefix("/image")
        call = Call(request, "image", service_path, "", request_id="r-1")
        call.mode = mode  # type: ignore[assignment]
        call.scope_text = scope
        parsed = parse_scope(scope) if scope is not None else None
        plan = plan_route(
            parsed,
            "image",
            SITE,
            self.sender.peers.names(),
            hops=0,
            max_hops=self.config.limits.max_hops,
            max_fanout=self.config.limits.max_fanout,
        )
        self.last = call
        response = await self.dispatcher.run(call, plan, NoStreaming())
        assert isinstance(response, web.Response), "a small answer is written whole"
        return response


class NoStreaming:
    """The client's connection of an engine call: every answer here is written whole."""

    async def prepare(self, answer: web.StreamResponse) -> None:
        raise AssertionError("the engine's answers are small: none is streamed")

    def cut(self) -> None:
        raise AssertionError("the engine's answers are small: none is cut")
