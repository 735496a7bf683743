"""Health probes, the service token's login and ``proxy status`` reach sites through the one
:class:`~siteclient.SiteClient`, so they run here on an in-memory transport and the test's
clock (no socket, no sleep); the real-server tests (test_health_bounds.py, test_around.py,
test_racing_connect.py, test_resend_on_heal.py) stay beside these."""

from __future__ import annotations

import json
from typing import Any

import pytest
from engine import SITE, Clock, Engine
from yarl import URL

from edgescope.cli.proxy import status_rows
from edgescope.errors import SiteUnreachable
from edgescope.proxy import probes
from edgescope.proxy.config import IdentityCredentials
from edgescope.proxy.identity import LOGIN_BODY_LIMIT, REFRESH_MARGIN, ServiceToken
from edgescope.proxy.memory import (
    Handler,
    MemoryAnswer,
    MemoryRequest,
    MemoryTransport,
    answer,
    make_answer,
    unreachable,
)
from edgescope.proxy.probes import Prober
from edgescope.proxy.protocol import HEALTH_PATH

pytestmark = pytest.mark.asyncio

HEALTH = json.dumps({"site": "Corte", "status": "ok", "services": ["image"]}).encode()


def taking(clock: Clock, seconds: float, then: Handler) -> Handler:
    """A site whose answer takes ``seconds`` of the test's clock."""

    async def handle(request: MemoryRequest) -> MemoryAnswer:
        clock.now += seconds
        return await then(request)

    return handle


def opened(engine: Engine, site: str) -> None:
    engine.sender.peers.breaker(site).record_failure(now=engine.clock(), reason="down")


BREAKER = {"probe_interval": 0, "failure_threshold": 1, "failure_span": 0}


# -- probes -------------------------------------------------------------------------------


async def test_a_probe_goes_through_the_site_client_even_while_the_breaker_is_open() -> None:
    engine = Engine({}, breaker=BREAKER)
    engine.transport.sites["Corte"] = taking(engine.clock, 0.012, answer(200, HEALTH))
    opened(engine, "Corte")
    prober = Prober(engine.sender, engine.config.breaker, clock=engine.clock)
    assert engine.sender.peers.breaker("Corte").state == "open"
    assert await prober.probe("Corte")
    (sent,) = engine.transport.requests
    assert (sent.site, sent.method, sent.url.path) == ("Corte", "GET", HEALTH_PATH)
    assert not sent.fresh
    assert engine.sender.peers.breaker("Corte").state == "closed"  # a probe closes it
    assert prober.rtt_ms == {"Corte": 12.0}  # on the test's clock
    assert prober.path_rtt_ms() == {"Corte": 12.0}  # no address known: the probe's own RTT
    assert prober.services == {"Corte": frozenset({"image"})}


async def test_a_failed_probe_counts_against_the_breaker_once() -> None:
    engine = Engine({"Corte": unreachable("connection refused")}, breaker=BREAKER)
    prober = Prober(engine.sender, engine.config.breaker, clock=engine.clock)
    assert not await prober.probe("Corte")
    breaker = engine.sender.peers.breaker("Corte")
    assert breaker.state == "open" and breaker.failures == 1
    assert breaker.last_error == "connection refused"
    assert "Corte" not in prober.rtt_ms


async def test_a_watch_goes_fresh_and_its_failure_is_no_evidence() -> None:
    engine = Engine({"Corte": unreachable("timed out connecting")}, breaker=BREAKER)
    prober = Prober(engine.sender, engine.config.breaker, clock=engine.clock)
    assert not await prober.probe("Corte", watch=True)
    (sent,) = engine.transport.requests
    assert sent.fresh and sent.connect_timeout == probes.WATCH_TIMEOUT
    breaker = engine.sender.peers.breaker("Corte")
    assert breaker.state == "closed" and breaker.failures == 0
    assert prober.watches == 1


async def test_a_health_answer_that_is_not_json_is_the_peers_failure() -> None:
    engine = Engine({"Corte": answer(200, b"<html>")}, breaker=BREAKER)
    prober = Prober(engine.sender, engine.config.breaker, clock=engine.clock)
    assert not await prober.probe("Corte")
    assert engine.sender.peers.breaker("Corte").last_error == "its answer is not JSON"


async def test_the_handshake_goes_to_the_address_the_probes_answer_came_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """F6: the path sample is measured to the address the probe's answer came from
    (``SiteClient.answered_from``), never to a lookup of its own."""
    engine = Engine({"Corte": answer(200, HEALTH)})
    engine.transport.addresses["corte.test"] = ("192.0.2.7", 80)
    measured: list[tuple[str, int]] = []

    async def handshake(address: tuple[str, int], timeout: float) -> float:
        measured.append(address)
        return 3.5

    monkeypatch.setattr(probes, "handshake_rtt_ms", handshake)
    prober = Prober(engine.sender, engine.config.breaker, clock=engine.clock)
    assert await prober.probe("Corte")
    assert measured == [("192.0.2.7", 80)]
    assert prober.path_rtt_ms() == {"Corte": 3.5}


# -- the service token's login ------------------------------------------------------------

CREDS = IdentityCredentials(URL("http://keystone.test/v3"), "edgescope", "secret", "service")


def login_answer(token: str, expires_at: str, catalog: list[Any]) -> Handler:
    doc = {"token": {"expires_at": expires_at, "catalog": catalog}}
    return answer(201, json.dumps(doc).encode(), {"X-Subject-Token": token})


async def test_the_login_goes_through_the_site_client_and_is_cached_on_the_clock() -> None:
    clock = Clock(now=0.0)
    transport = MemoryTransport({SITE: login_answer("t-1", "1970-01-01T01:00:00Z", [{"x": 1}])})
    tokens = ServiceToken(CREDS, transport, SITE, clock=clock)
    assert await tokens.get() == "t-1"
    assert await tokens.catalog() == [{"x": 1}]
    (sent,) = transport.requests
    assert (sent.method, str(sent.url)) == ("POST", "http://keystone.test/v3/auth/tokens")
    assert json.loads(sent.body)["auth"]["identity"]["password"]["user"]["name"] == "edgescope"
    clock.now = 3600 - REFRESH_MARGIN - 1  # still valid a minute before it expires
    await tokens.get()
    assert len(transport.requests) == 1
    clock.now = 3600 - REFRESH_MARGIN + 1
    await tokens.get()
    assert len(transport.requests) == 2


async def test_a_refused_login_is_the_local_sites_failure() -> None:
    transport = MemoryTransport({SITE: answer(401, b"{}")})
    with pytest.raises(SiteUnreachable, match=r"refused the service credentials \(401\)"):
        await ServiceToken(CREDS, transport, SITE).get()


async def test_a_login_answer_over_its_bound_is_not_read_whole() -> None:
    async def huge(request: MemoryRequest) -> MemoryAnswer:
        body = b" " * (LOGIN_BODY_LIMIT + 1)
        return make_answer(201, body, {"X-Subject-Token": "t"})

    with pytest.raises(SiteUnreachable, match="goes over"):
        await ServiceToken(CREDS, MemoryTransport({SITE: huge}), SITE).get()


# -- proxy status -------------------------------------------------------------------------


async def test_status_probes_each_peer_and_reads_the_breakers_of_the_running_proxy() -> None:
    engine = Engine({})
    clock = Clock(now=0.0)
    status = {"peers": [{"name": "Corte", "breaker": "open", "last_error": "refused"}]}
    transport = MemoryTransport(
        {
            SITE: answer(200, json.dumps(status).encode()),
            "Corte": taking(clock, 0.004, answer(200, HEALTH)),
            "Marseille": unreachable("connection refused"),
        }
    )
    rows = {row["peer"]: row for row in await status_rows(engine.config, transport, clock)}
    assert str(transport.requests[0].url).endswith("/edgescope/status")
    corte, marseille = rows["Corte"], rows["Marseille"]
    assert corte["reachable"] and corte["latency_ms"] == pytest.approx(4.0)
    assert (corte["breaker"], corte["last_error"]) == ("open", "refused")
    assert not marseille["reachable"] and marseille["error"] == "connection refused"
    assert marseille["breaker"] == "unknown (proxy not running)"


async def test_status_without_a_running_proxy_still_probes_the_peers() -> None:
    engine = Engine({})
    transport = MemoryTransport({"Corte": answer(200, HEALTH), "Marseille": answer(200, HEALTH)})
    rows = await status_rows(engine.config, transport)
    assert [row["reachable"] for row in rows] == [True, True]
    assert {row["breaker"] for row in rows} == {"unknown (proxy not running)"}
