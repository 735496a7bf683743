"""The extension interface: what the proxy calls, and when, with a small extension of the test's.

The extension rewrites each branch's path and headers, wraps the local branch, sees what the
call did and rewrites the merged answer: all through the hooks, never the dispatcher.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from aiohttp import web

from edgescope.errors import ExtensionError
from edgescope.proxy.call import BranchReply, BranchRequest, Call
from edgescope.proxy.extension import (
    ExtensionSet,
    Finished,
    Join,
    Observe,
    ProxyServices,
    Recorded,
    SendBranch,
    WantsBody,
)
from edgescope.proxy.outcome import Verdict
from edgescope.proxy.route import Plan

SitesFactory = Any


class Tagger:
    """Tags each branch with its site; records what the proxy told it."""

    name = "tagger"
    events = ("wants_body", "join")

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.finished: list[Finished] = []
        self.services: ProxyServices | None = None

    def routes(self) -> Sequence[web.RouteDef]:
        async def hello(request: web.Request) -> web.Response:
            return web.json_response({"extension": self.name})

        return [web.get("/edgescope/tagger", hello)]

    async def start(self, proxy: ProxyServices) -> None:
        self.services = proxy
        self.seen.append("start")

    async def stop(self) -> None:
        self.seen.append("stop")

    def wants_body(self, call: Call, plan: Plan) -> bool:
        return True

    def join(self, call: Call, plan: Plan, body: bytes | None) -> Tagger.Hooks | None:
        self.seen.append(f"join {call.method} body={body!r}")
        return None if call.path.startswith("/skip") else Tagger.Hooks(self)

    class Hooks:
        reads_replies = True
        queues_writes = False

        def __init__(self, tagger: Tagger) -> None:
            self.tagger = tagger

        def branch(self, request: BranchRequest) -> BranchRequest:
            request.path = request.path.replace("ANY", request.site)
            request.headers["X-Tag"] = request.site
            request.headers["X-Edgescope-Marker"] = "for peers only"
            return request

        async def apply_local(self, request: BranchRequest, send: SendBranch) -> BranchReply:
            self.tagger.seen.append(f"local {request.site}")
            return await send()

        async def record(self, finished: Finished) -> Recorded:
            self.tagger.finished.append(finished)
            return Recorded({"X-Tag-Verdict": finished.verdict.value}, "tagger was here")

        def collapse(self, body: bytes, replies: Sequence[BranchReply]) -> bytes:
            assert [r.site for r in replies] == ["Paris", "Corte"]
            return body.replace(b'"items"', b'"tagged"')


async def test_the_proxy_calls_the_hooks_of_an_and(sites: SitesFactory) -> None:
    tagger = Tagger()
    paris, corte = await sites("Paris", "Corte", extensions={"Paris": [tagger]})
    assert tagger.seen == ["start"] and tagger.services is not None
    assert tagger.services.site == "Paris" and tagger.services.is_peer("Corte")
    status, headers, body = await paris.request(
        "POST", "/image/echo/ANY", json={"a": 1}, headers={"X-Scope": "{image: Paris & Corte}"}
    )
    assert status == 200, body
    assert headers["X-Tag-Verdict"] == "ok"
    [at_paris] = paris.backend_hits("/image/echo/Paris")
    [at_corte] = corte.backend_hits("/image/echo/Corte")
    assert at_paris["headers"]["X-Tag"] == "Paris" and at_corte["headers"]["X-Tag"] == "Corte"
    for hit in (at_paris, at_corte):  # internal markers stop at a proxy
        assert not [h for h in hit["headers"] if h.lower().startswith("x-edgescope-")]
    assert tagger.seen[1:] == ["join POST body=b'{\"a\": 1}'", "local Paris"]
    [finished] = tagger.finished
    assert finished.verdict is Verdict.OK
    assert [r.site for r in finished.succeeded] == ["Paris", "Corte"]

    status, _, body = await paris.get("/image/items", headers={"X-Scope": "{image: Paris & Corte}"})
    assert status == 200 and "tagged" in body and "items" not in body


async def test_a_failed_branch_is_recorded_as_failed(sites: SitesFactory) -> None:
    tagger = Tagger()
    paris, _ = await sites("Paris", "Corte", extensions={"Paris": [tagger]})
    status, headers, body = await paris.get(
        "/image/only/Paris", headers={"X-Scope": "{image: Paris & Corte}"}
    )
    assert status == 404 and headers["X-Tag-Verdict"] == "failed"
    assert body["error"]["message"].endswith("; tagger was here")  # a note ends the message
    assert tagger.finished[-1].verdict is Verdict.FAILED


async def test_routes_are_mounted_and_a_skipped_call_is_plain(sites: SitesFactory) -> None:
    tagger = Tagger()
    (paris,) = await sites("Paris", extensions={"Paris": [tagger]})
    status, _, body = await paris.get("/edgescope/tagger")
    assert status == 200 and body == {"extension": "tagger"}
    status, headers, body = await paris.get("/image/skip/me")
    assert status == 200 and body["path"] == "/image/skip/me" and "X-Tag-Verdict" not in headers
    await paris.proxy.stop()
    assert tagger.seen[-1] == "stop"


class Quiet:
    """An extension with routes only: it implements no event, and needs no stub."""

    name = "quiet"
    events: tuple[str, ...] = ()

    def routes(self) -> Sequence[web.RouteDef]:
        return []

    async def start(self, proxy: ProxyServices) -> None:
        return None

    async def stop(self) -> None:
        return None


def test_events_are_looked_up_by_name_at_load() -> None:
    tagger, quiet = Tagger(), Quiet()
    extensions = ExtensionSet([tagger, quiet])
    assert extensions.handles(Join) and extensions.handles(WantsBody)
    assert not extensions.handles(Observe)
    assert [e for e, _ in extensions.handlers(Join)] == [tagger]


def test_an_unknown_event_name_is_an_error_at_load() -> None:
    misspelt = Quiet()
    misspelt.events = ("observ",)
    with pytest.raises(ExtensionError, match="unknown event 'observ'; known events: bind_status"):
        ExtensionSet([misspelt])


def test_a_listed_event_needs_its_method_and_a_method_its_listing() -> None:
    listed = Quiet()
    listed.events = ("observe",)
    with pytest.raises(ExtensionError, match=r"lists event 'observe' but has no observe\(\)"):
        ExtensionSet([listed])
    unlisted = Tagger()
    unlisted.events = ("join",)
    with pytest.raises(ExtensionError, match=r"has wants_body\(\) but does not list"):
        ExtensionSet([unlisted])
