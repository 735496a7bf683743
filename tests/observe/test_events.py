"""The events extension on real proxies: who may watch, what a call event says, bounded feeds."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from edgescope.errors import ConfigError
from edgescope.observe.events import Events, EventsConfig
from edgescope.observe.feed import Feed, FeedFull
from loopback import next_event

ADMIN = {"X-Auth-Token": "admin-token-s3cret"}
EVENTS = "/edgescope/events"


async def with_events(sites: Any, *names: str, **config: Any) -> tuple[list[Any], list[Events]]:
    events = [Events(name, EventsConfig.parse(config)) for name in names]
    made = await sites(
        *names, identity=True, extensions={n: [e] for n, e in zip(names, events, strict=True)}
    )
    return made, events


def is_call(path: str) -> Any:
    return lambda kind, data: kind == "call" and data["path"] == path


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"X-Auth-Token": "member-token"}, 403),
        ({"X-Auth-Token": "bad-token"}, 403),
    ],
)
async def test_nobody_but_an_operator_gets_events_or_state(
    sites: Any, headers: dict[str, str], status: int
) -> None:
    [paris], _ = await with_events(sites, "Paris")
    for path in (EVENTS, EVENTS + "/state"):
        got, _, body = await paris.get(path, headers=headers)
        assert got == status, body
        assert body["error"]["code"] == status
        assert "Paris" in body["error"]["message"] or status == 401


async def test_a_forged_hop_marker_does_not_replace_the_token(sites: Any) -> None:
    [paris, _corte], _ = await with_events(sites, "Paris", "Corte")
    forged = {
        "X-Edgescope-Protocol": "2",
        "X-Edgescope-Hop": "1",
        "X-Edgescope-Peer": "Corte",
        "X-Edgescope-Timestamp": "1",
        "X-Edgescope-Key-Id": "x",
        "X-Edgescope-Signature": "AAAA",
        "X-Edgescope-Proof": "",
    }
    status, _, _ = await paris.get(EVENTS + "/state", headers=forged)
    assert status == 401


async def test_a_call_event_has_the_route_and_no_secret(sites: Any) -> None:
    [paris, _corte], _ = await with_events(sites, "Paris", "Corte")
    assert paris.session is not None
    async with paris.session.get(paris.url + EVENTS, headers=ADMIN) as stream:
        assert stream.status == 200
        assert stream.headers["Content-Type"] == "text/event-stream"
        _kind, state = await next_event(stream, lambda kind, data: kind == "state")
        assert state["site"] == "Paris" and state["peers"][0]["name"] == "Corte"
        status, _, _ = await paris.get(
            "/image/echo?password=hunter2",
            headers={"X-Scope": "{image: Corte}", "X-Auth-Token": "user-tok3n"},
        )
        assert status == 200
        _, call = await next_event(stream, is_call("/echo"))
    assert call["site"] == "Paris" and call["service"] == "image" and call["status"] == 200
    assert call["scope"] == "{image: Corte}"
    assert call["carrier"] == "x-scope"
    [branch] = call["route"]
    assert branch["site"] == "Corte" and branch["status"] == 200
    assert branch["breaker"] == "closed" and branch["ms"] > 0
    text = json.dumps(call)
    assert "user-tok3n" not in text and "hunter2" not in text and "s3cret" not in text


async def test_each_branch_of_an_and_and_an_or_is_in_the_route(sites: Any) -> None:
    [paris, _corte, _lyon], _ = await with_events(sites, "Paris", "Corte", "Lyon")
    assert paris.session is not None
    async with paris.session.get(paris.url + EVENTS, headers=ADMIN) as stream:
        await paris.get("/image/items", headers={"X-Scope": "{image: Paris & Corte}"})
        _, merged = await next_event(stream, is_call("/items"))
        await paris.get("/image/only/Lyon", headers={"X-Scope": "{image: Corte | Lyon}"})
        _, fallback = await next_event(stream, is_call("/only/Lyon"))
    assert {(b["site"], b["status"], b["breaker"]) for b in merged["route"]} == {
        ("Paris", 200, "local"),
        ("Corte", 200, "closed"),
    }
    assert [(b["site"], b["status"]) for b in fallback["route"]] == [("Corte", 404), ("Lyon", 200)]
    assert fallback["status"] == 200


async def test_the_peer_serving_a_hop_reports_it_under_the_same_id(sites: Any) -> None:
    [paris, corte], _ = await with_events(sites, "Paris", "Corte")
    assert corte.session is not None
    async with corte.session.get(corte.url + EVENTS, headers=ADMIN) as stream:
        _, headers, _ = await paris.get("/image/echo", headers={"X-Scope": "{image: Corte}"})
        _, served = await next_event(stream, is_call("/echo"))
    assert served["site"] == "Corte" and served["from_peer"] == "Paris"
    assert served["client"] == "Paris"
    assert served["id"] == headers["x-openstack-request-id"]
    assert [b["site"] for b in served["route"]] == ["Corte"]


async def test_an_unreachable_peer_shows_in_the_route_and_its_breaker_opens(
    sites: Any, refused_url: str
) -> None:
    events = Events("Paris", EventsConfig.parse({"state_interval": 0.1}))
    [paris] = await sites(
        "Paris",
        identity=True,
        extra_peers={"Paris": {"Lyon": {"url": refused_url}}},
        breaker={"failure_threshold": 1, "open_seconds": 60},
        extensions={"Paris": [events]},
    )
    assert paris.session is not None
    async with paris.session.get(paris.url + EVENTS, headers=ADMIN) as stream:
        for _ in range(2):
            await paris.get("/image/echo", headers={"X-Scope": "{image: Lyon}"})
        _, first = await next_event(stream, lambda k, d: k == "call")
        _, second = await next_event(stream, lambda k, d: k == "call")
        _, state = await next_event(
            stream, lambda k, d: k == "state" and d["peers"] and d["peers"][0]["breaker"] == "open"
        )
    assert first["status"] == 503 and first["route"][0]["status"] is None
    assert first["route"][0]["error"]  # why: connection refused
    assert second["route"][0]["breaker"] == "open"
    assert second["route"][0]["error"].startswith("circuit breaker open")
    assert state["peers"][0]["failures"] >= 1 and state["peers"][0]["last_error"]


async def test_a_console_that_does_not_read_loses_events_not_the_proxy(sites: Any) -> None:
    [paris, _corte], [events, _] = await with_events(sites, "Paris", "Corte", queue_size=2)
    _reader, writer = await asyncio.open_connection(*paris.proxy.addresses["main"])
    writer.write(
        f"GET {EVENTS} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: admin-t\r\n\r\n".encode()
    )  # and never read what comes
    await writer.drain()
    for _ in range(100):
        if events.feed.subscribers:
            break
        await asyncio.sleep(0.02)
    for _ in range(30):  # every call is answered while the console does not read
        status, _, _ = await paris.get("/image/echo", headers={"X-Scope": "{image: Corte}"})
        assert status == 200
    for n in range(1000):  # a burst the console's queue (2) cannot take
        events.feed.publish("call", {"n": n, "pad": "x" * 1000})
    assert events.feed.dropped >= 998
    status, _, _ = await paris.get("/image/echo", headers={"X-Scope": "{image: Corte}"})
    assert status == 200
    writer.close()


async def test_one_console_too_many_gets_a_503(sites: Any) -> None:
    [paris], _ = await with_events(sites, "Paris", max_subscribers=1)
    assert paris.session is not None
    async with paris.session.get(paris.url + EVENTS, headers=ADMIN) as first:
        await next_event(first, lambda kind, data: kind == "state")
        status, _, body = await paris.get(EVENTS, headers=ADMIN)
        _, _, text = await paris.get("/metrics")
    assert status == 503 and "max_subscribers" in body["error"]["message"]
    assert b'edgescope_bound_size{bound="event_subscribers"} 1.0' in text
    assert b'edgescope_bound_limit{bound="event_subscribers"} 1.0' in text
    assert b'edgescope_bound_refused_total{bound="event_subscribers"} 1.0' in text


async def test_the_state_answer_holds_the_peers(sites: Any) -> None:
    [paris, _corte], _ = await with_events(sites, "Paris", "Corte")
    status, _, state = await paris.get(EVENTS + "/state", headers=ADMIN)
    assert status == 200
    assert state["site"] == "Paris" and [p["name"] for p in state["peers"]] == ["Corte"]
    assert state["replicas"] is None  # no replicas extension here
    assert "image" in state["services"]


def test_feed_drops_and_counts_what_a_full_queue_cannot_take() -> None:
    feed = Feed(queue_size=2, max_subscribers=1)
    slow = feed.subscribe()
    for n in range(5):
        feed.publish("call", {"n": n})
    assert slow.queue.qsize() == 2 and slow.dropped == 3 and feed.dropped == 3
    with pytest.raises(FeedFull):
        feed.subscribe()
    feed.unsubscribe(slow)
    feed.publish("call", {"n": 6})  # nobody listens: nothing is encoded or kept
    assert slow.queue.qsize() == 2


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"speed": 1}, "unknown key 'speed'"),
        ({"queue_size": 0}, "events.queue_size: expected a positive integer"),
        ({"operator_roles": "admin"}, "events.operator_roles: expected a list"),
        ({"state_interval": "fast"}, "events.state_interval: expected a positive number"),
        ({"state_interval": 10}, "events.state_interval: at most 4.0 s"),
    ],
)
def test_bad_events_config_is_named(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EventsConfig.parse(table)


async def test_event_stream_needs_no_client_library(sites: Any) -> None:
    """A plain HTTP client reads the stream (what the console does)."""
    [paris], _ = await with_events(sites, "Paris")
    async with (
        aiohttp.ClientSession() as session,
        session.get(paris.url + EVENTS, headers=ADMIN) as stream,
    ):
        line = await stream.content.readline()
    assert line == b"event: state\n"
