"""The replicas extension's hooks in the dispatcher, on the in-memory transport.

Paris's proxy with :class:`Replicas` (its registry in a temporary folder), every site a
function of the test: what the hooks record, translate and collapse, and the extension's
own calls seen on the same transport. No socket, no sleep.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from engine import SITE, Engine

from edgescope.errors import SiteUnreachable
from edgescope.proxy.call import BranchTrace
from edgescope.proxy.memory import (
    Handler,
    MemoryAnswer,
    MemoryRequest,
    answer,
    make_answer,
    unreachable,
)
from edgescope.proxy.protocol import PENDING_HEADER, SET_HEADER
from edgescope.replicas.extension import Replicas

BOTH = "{image: Paris & Corte}"


def creates(prefix: str) -> Handler:
    """A site whose POST /things makes ``<prefix><n>`` (8 hex digits in all) and whose other
    calls answer their own path."""
    made: list[str] = []

    async def handle(request: MemoryRequest) -> MemoryAnswer:
        if request.method == "POST" and request.url.path.endswith("/things"):
            thing = json.loads(request.body)["thing"]
            made.append(f"{prefix}{len(made) + 1:06x}")
            return make_answer(201, json.dumps({"thing": {**thing, "id": made[-1]}}).encode())
        return make_answer(200, json.dumps({"path": request.url.raw_path}).encode())

    return handle


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    replicas = Replicas.open(SITE, tmp_path / "replicas", replay_interval=3600)
    replicas.sync_interval = 0
    engine = Engine({}, extensions=[replicas])
    engine.replicas = replicas  # type: ignore[attr-defined]
    await replicas.start(engine.sender)
    yield engine
    await replicas.stop()


async def test_an_and_create_is_one_set_answered_under_one_handle(engine: Engine) -> None:
    engine.transport.sites.update({SITE: creates("a0"), "Corte": creates("c0")})
    body = json.dumps({"thing": {"name": "vm"}}).encode()
    response = await engine.call("POST", "/image/things", BOTH, body=body)
    assert response.status == 201, response.body
    handle = response.headers[SET_HEADER]
    assert handle == "a0000001"
    assert json.loads(response.body)["thing"]["id"] == handle  # type: ignore[arg-type]
    record = engine.replicas.registry.lookup("c0000001")  # type: ignore[attr-defined]
    assert record is not None and record.handle == handle
    # the record pushed to Corte, an extension's own call, went the one way too
    sent = sorted((r.site, r.url.raw_path) for r in engine.transport.requests)
    assert sent == [
        ("Corte", "/edgescope/replicas/sets"),
        ("Corte", "/edgescope/svc/image/things"),
        (SITE, "/image/things"),
    ]


async def test_a_branch_to_corte_gets_corte_s_id_for_the_handle(engine: Engine) -> None:
    engine.transport.sites.update({SITE: creates("a0"), "Corte": creates("c0")})
    body = json.dumps({"thing": {"name": "vm"}}).encode()
    await engine.call("POST", "/image/things", BOTH, body=body)
    engine.transport.requests.clear()
    response = await engine.call("GET", "/image/things/a0000001", "{image: Corte}")
    assert response.status == 200
    (sent,) = [r for r in engine.transport.requests if r.site == "Corte"]
    assert sent.url.raw_path.endswith("/things/c0000001")


async def test_an_eventual_write_is_queued_for_the_unreachable_site(engine: Engine) -> None:
    engine.transport.sites.update({SITE: creates("a0"), "Corte": unreachable()})
    body = json.dumps({"thing": {"name": "vm"}}).encode()
    response = await engine.call("POST", "/image/things", BOTH, mode="eventual", body=body)
    assert response.status in (201, 202), response.body
    assert response.headers[PENDING_HEADER] == "Corte"
    usage = engine.replicas.registry.queue_usage()  # type: ignore[attr-defined]
    assert usage, "the write for Corte waits in the queue"


async def test_a_failed_and_create_is_undone_through_the_same_transport(engine: Engine) -> None:
    """All or nothing: Corte refused, so Paris's copy is deleted again, by the extension's
    own call, which reaches Paris's backend the one way every call does."""
    engine.transport.sites.update({SITE: creates("a0"), "Corte": answer(500)})
    body = json.dumps({"thing": {"name": "vm"}}).encode()
    response = await engine.call("POST", "/image/things", BOTH, body=body)
    assert response.status >= 500
    undo = [(r.site, r.method, r.url.raw_path) for r in engine.transport.requests[2:]]
    assert undo == [(SITE, "DELETE", "/image/things/a0000001")]


class SeesSiteCalls:
    """An observer of the extensions' own calls (the ``site_call`` event)."""

    name = "sees-site-calls"
    events = ("site_call",)

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str, BranchTrace]] = []

    def routes(self) -> list[object]:
        return []

    async def start(self, proxy: object) -> None:
        return None

    async def stop(self) -> None:
        return None

    def site_call(self, origin: str, method: str, path: str, trace: BranchTrace) -> None:
        self.seen.append((origin, method, path, trace))


@pytest.fixture
async def watched(tmp_path: Path) -> AsyncIterator[tuple[Engine, SeesSiteCalls]]:
    replicas = Replicas.open(SITE, tmp_path / "replicas", replay_interval=3600)
    replicas.sync_interval = 0
    observer = SeesSiteCalls()
    engine = Engine({}, extensions=[replicas, observer])
    engine.replicas = replicas  # type: ignore[attr-defined]
    await replicas.start(engine.sender)
    yield engine, observer
    await replicas.stop()


async def test_the_extensions_own_calls_are_seen_as_branches_are(
    watched: tuple[Engine, SeesSiteCalls],
) -> None:
    """The record push (send_to_peer) and the undo (call_site) are each told once to the
    observers, with the site, the breaker state when sent and how it went."""
    engine, observer = watched
    engine.transport.sites.update({SITE: creates("a0"), "Corte": creates("c0")})
    body = json.dumps({"thing": {"name": "vm"}}).encode()
    assert (await engine.call("POST", "/image/things", BOTH, body=body)).status == 201
    [(origin, method, path, trace)] = observer.seen
    assert (origin, method, path) == ("send_to_peer", "POST", "/edgescope/replicas/sets")
    assert (trace.site, trace.breaker, trace.status, trace.error) == ("Corte", "closed", 200, "")
    assert trace.seconds is not None and trace.seconds >= 0

    observer.seen.clear()
    engine.transport.sites["Corte"] = answer(500)
    response = await engine.call("POST", "/image/things", BOTH, body=body)
    assert response.status >= 500
    [(origin, method, path, trace)] = observer.seen
    assert (origin, method, path) == ("call_site", "DELETE", "/things/a0000002")
    assert (trace.site, trace.breaker, trace.status) == (SITE, "local", 200)


async def test_an_own_call_that_fails_is_seen_and_counted_once_by_the_breaker(
    watched: tuple[Engine, SeesSiteCalls],
) -> None:
    engine, observer = watched
    engine.transport.sites["Corte"] = unreachable()
    services = engine.sender
    with pytest.raises(SiteUnreachable):
        await services.send_to_peer("Corte", "GET", "/edgescope/replicas", headers={}, body=None)
    [(origin, _, _, trace)] = observer.seen
    assert origin == "send_to_peer" and trace.status is None and trace.error
    assert engine.sender.peers.breaker("Corte").failures == 1
    assert [r.site for r in engine.transport.requests] == ["Corte"]  # sent once, no retry here
