"""The dispatcher and sender on an in-memory transport: one site, ``|``, ``&``, errors, hedging.

No socket and no sleep: every site is a function of the test (``proxy/memory.py``), reached
through the one :class:`~siteclient.SiteClient` the real proxy uses ``Upstream`` for. The
real-server tests (test_fallback.py, test_fanout.py, test_hedge.py) stay beside these.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from engine import PEERS, SITE, Engine

import sitekeys
from edgescope.errors import AnswerTooLarge
from edgescope.lang import SiteRef
from edgescope.proxy.call import Call
from edgescope.proxy.keys import Ed25519PublicKey, load_private
from edgescope.proxy.memory import (
    MemoryRequest,
    answer,
    client_request,
    held,
    make_answer,
    unreachable,
)
from edgescope.proxy.protocol import PEER_PATH, SIGNATURE_HEADER, SITES_HEADER, verify_hop

pytestmark = pytest.mark.asyncio

ITEMS = "/image/v2/images"


def items(*names: str) -> bytes:
    return json.dumps({"images": [{"id": n} for n in names]}).encode()


def error_of(response: object) -> dict[str, object]:
    body = json.loads(getattr(response, "body"))  # noqa: B009
    assert isinstance(body, dict)
    return body["error"]  # type: ignore[no-any-return]


# -- one site -----------------------------------------------------------------------------


async def test_no_scope_goes_to_the_local_backend_only() -> None:
    engine = Engine({SITE: answer(200, items("a"))})
    response = await engine.call("GET", ITEMS)
    assert response.status == 200
    assert json.loads(response.body) == {"images": [{"id": "a"}]}  # type: ignore[arg-type]
    (sent,) = engine.transport.requests
    assert str(sent.url) == "http://paris.test/image/v2/images"
    assert SIGNATURE_HEADER not in sent.headers  # markers are for peers, never a backend


async def test_a_peer_gets_a_signed_hop_with_the_branch_scope() -> None:
    engine = Engine({"Corte": answer(200, items("c"))})
    response = await engine.call("GET", ITEMS, "{image: Corte}")
    assert response.status == 200
    assert response.headers[SITES_HEADER] == "Corte=200"
    (sent,) = engine.transport.requests
    assert sent.url.path == PEER_PATH + "image/v2/images"
    corte_sees = verify_hop(
        sent.headers,
        "GET",
        sent.url.raw_path_qs,
        "Corte",
        lambda peer: engine.sender.peers.public_keys(peer) if peer != SITE else _paris_key(),
        now=time.time(),
        window=60,
    )
    assert corte_sees is not None and corte_sees.peer == SITE and corte_sees.hops == 1


async def test_an_unreachable_single_site_is_a_503_naming_it() -> None:
    engine = Engine({"Corte": unreachable("connection refused")})
    response = await engine.call("GET", ITEMS, "{image: Corte}")
    assert response.status == 503
    assert "Corte" in error_of(response)["message"]  # type: ignore[operator]
    assert [b.error for b in engine.last.branches] == ["connection refused"]  # type: ignore[union-attr]


# -- | --------------------------------------------------------------------------------------


async def test_fallback_moves_on_when_the_first_site_is_unreachable() -> None:
    engine = Engine({"Corte": unreachable(), SITE: answer(200, items("p"))})
    response = await engine.call("GET", ITEMS, "{image: Corte | Paris}")
    assert response.status == 200
    assert engine.transport.sent_to() == ["Corte", SITE]
    assert "Corte=" in response.headers[SITES_HEADER]
    assert engine.last is not None and engine.last.chosen == ["Corte", SITE]


async def test_fallback_moves_on_after_a_5xx_and_a_404() -> None:
    engine = Engine({"Corte": answer(503), "Marseille": answer(404), SITE: answer(200, items("p"))})
    response = await engine.call("GET", ITEMS, "{image: Corte | Marseille | Paris}")
    assert response.status == 200
    assert engine.transport.sent_to() == ["Corte", "Marseille", SITE]


async def test_fallback_never_runs_the_right_of_an_ok_site() -> None:
    engine = Engine({SITE: answer(200, items("p")), "Corte": answer(200, items("c"))})
    response = await engine.call("GET", ITEMS, "{image: Paris | Corte}")
    assert response.status == 200
    assert engine.transport.sent_to() == [SITE]


async def test_fallback_with_every_site_down_is_a_503_naming_each() -> None:
    engine = Engine({})  # no site answers: each "cannot connect"
    response = await engine.call("GET", ITEMS, "{image: Corte | Marseille}")
    assert response.status == 503
    assert engine.transport.requests == []  # the transport had no such sites
    sites = response.headers[SITES_HEADER]
    assert "Corte" in sites and "Marseille" in sites


async def test_every_fallback_attempt_replays_the_whole_request_body() -> None:
    engine = Engine({"Corte": answer(503), SITE: answer(201, b"{}")})
    body = json.dumps({"name": "x" * 100}).encode()
    response = await engine.call("POST", ITEMS, "{image: Corte | Paris}", body=body)
    assert response.status == 201
    assert [r.body for r in engine.transport.requests] == [body, body]


# -- & --------------------------------------------------------------------------------------


async def test_and_read_merges_every_site() -> None:
    engine = Engine({SITE: answer(200, items("p")), "Corte": answer(200, items("c"))})
    response = await engine.call("GET", ITEMS, "{image: Paris & Corte}")
    assert response.status == 200
    merged = json.loads(response.body)  # type: ignore[arg-type]
    assert sorted(i["id"] for i in merged["images"]) == ["c", "p"]
    assert sorted(engine.transport.sent_to()) == ["Corte", SITE]


async def test_strict_and_write_fails_when_one_site_is_unreachable() -> None:
    engine = Engine({SITE: answer(201, b"{}"), "Corte": unreachable()})
    response = await engine.call("POST", ITEMS, "{image: Paris & Corte}", body=b"{}")
    assert response.status == 503
    assert "Corte" in response.headers[SITES_HEADER]


async def test_eventual_and_read_answers_from_the_reachable_sites() -> None:
    engine = Engine({SITE: answer(200, items("p")), "Corte": unreachable()})
    response = await engine.call("GET", ITEMS, "{image: Paris & Corte}", mode="eventual")
    assert response.status == 200
    merged = json.loads(response.body)  # type: ignore[arg-type]
    assert [i["id"] for i in merged["images"]] == ["p"]


async def test_eventual_and_write_without_a_queue_fails() -> None:
    """Nothing can queue the write for Corte (no replicas extension): not half-applied OK."""
    engine = Engine({SITE: answer(201, b"{}"), "Corte": unreachable()})
    response = await engine.call(
        "POST", ITEMS, "{image: Paris & Corte}", mode="eventual", body=b"{}"
    )
    assert response.status == 503


async def test_and_every_branch_gets_the_teed_body() -> None:
    engine = Engine({SITE: answer(201, b"{}"), "Corte": answer(201, b"{}")})
    body = b'{"name": "shared"}'
    response = await engine.call("POST", ITEMS, "{image: Paris & Corte}", body=body)
    assert response.status == 201
    assert [r.body for r in engine.transport.requests] == [body, body]


# -- errors: one model ----------------------------------------------------------------------


async def test_an_answer_that_breaks_off_is_its_sites_failure() -> None:
    engine = Engine(
        {SITE: answer(200, items("p")), "Corte": answer(200, items("c"), breaks_off="reset")}
    )
    response = await engine.call("GET", ITEMS, "{image: Paris & Corte}")
    assert response.status == 503
    (corte,) = [b for b in engine.last.branches if b.site == "Corte"]  # type: ignore[union-attr]
    assert corte.status == 200  # the headers came; the body did not


async def test_answers_too_large_to_merge_fail_the_call_not_a_site() -> None:
    big = items(*[str(i) for i in range(200)])
    engine = Engine(
        {SITE: answer(200, big), "Corte": answer(200, big)},
        limits={"max_merge_bytes": 1024},
    )
    with pytest.raises(AnswerTooLarge):  # the server answers it with its own code
        await engine.call("GET", ITEMS, "{image: Paris & Corte}")


async def test_a_bug_in_a_site_call_is_never_a_site_failure() -> None:
    async def broken(request: MemoryRequest) -> object:
        raise RuntimeError("a bug")

    engine = Engine({"Corte": broken, SITE: answer(200, items("p"))})  # type: ignore[dict-item]
    with pytest.raises(RuntimeError):  # the server makes it a 500, logged; never a fallback
        await engine.call("GET", ITEMS, "{image: Corte | Paris}")
    assert engine.transport.sent_to() == ["Corte"]


async def test_an_open_breaker_keeps_calls_from_its_site() -> None:
    engine = Engine(
        {"Corte": unreachable(), SITE: answer(200, items("p"))},
        breaker={"probe_interval": 0, "failure_threshold": 1, "failure_span": 0},
    )
    await engine.call("GET", ITEMS, "{image: Corte | Paris}")
    assert engine.sender.peers.breaker("Corte").state == "open"
    response = await engine.call("GET", ITEMS, "{image: Corte | Paris}")
    assert response.status == 200
    assert engine.transport.sent_to() == ["Corte", SITE, SITE]  # not asked the second time
    trace = engine.last.branches[0]  # type: ignore[union-attr]
    assert trace.breaker == "open" and "circuit breaker open" in trace.error


# -- hedging: the decision, on the test's clock --------------------------------------------


async def test_hedge_delay_follows_each_sites_recent_answers_on_the_clock() -> None:
    engine = Engine({}, hedging={"min_samples": 3, "window": 60.0, "unknown": 0.5})
    clock, latencies = engine.clock, engine.dispatcher.latencies
    for seconds in (0.1, 0.2, 0.3):
        latencies.observe("Corte", seconds, now=clock())
    engine.last = None
    delay = await _delay_for(engine, "Corte")
    assert delay == pytest.approx(0.3)  # the p95 of three answers
    clock.now += 61  # the window passed: nothing recent, the unknown delay
    assert await _delay_for(engine, "Corte") == pytest.approx(0.5)


async def test_a_suspect_site_is_raced_at_the_floor_and_writes_never_hedge() -> None:
    engine = Engine({}, hedging={"floor": 0.05})
    engine.sender.peers.breaker("Corte").record_abandoned()
    assert await _delay_for(engine, "Corte") == pytest.approx(0.05)
    assert await _delay_for(engine, "Marseille") == pytest.approx(0.5)
    assert await _delay_for(engine, "Corte", method="POST") is None


async def test_a_held_site_is_hedged_and_the_next_answers() -> None:
    """Corte holds its answer until the test lets it go; the hedge asks Paris meanwhile."""
    release = asyncio.Event()
    engine = Engine(
        {"Corte": held(release, answer(200, items("c"))), SITE: answer(200, items("p"))},
        hedging={"floor": 0.001, "unknown": 0.001},
    )
    response = await engine.call("GET", ITEMS, "{image: Corte | Paris}")
    release.set()
    assert response.status == 200
    assert json.loads(response.body) == {"images": [{"id": "p"}]}  # type: ignore[arg-type]
    assert engine.transport.sent_to() == ["Corte", SITE]
    assert engine.sender.peers.breaker("Corte").suspect  # abandoned for a later site


async def _delay_for(engine: Engine, site: str, method: str = "GET") -> float | None:
    """The dispatcher's hedge delay for ``site`` in a ``|`` read (or ``method``)."""
    call = Call(client_request(method, ITEMS), "image", "/v2/images", "", "r")
    delay = engine.dispatcher._hedge_after(call)
    return None if delay is None else delay(SiteRef(site))


def _paris_key() -> tuple[Ed25519PublicKey, ...]:
    return (load_private(sitekeys.private(SITE)).public_key(),)


async def test_the_engine_knows_its_peers() -> None:
    engine = Engine({})
    assert set(engine.sender.peers.names()) == set(PEERS)
    assert make_answer(200, b"x").content_length == 1
