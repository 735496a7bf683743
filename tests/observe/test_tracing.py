"""OpenTelemetry spans of real proxies, exported with OTLP to a real receiver on loopback."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edgescope.errors import ConfigError
from edgescope.observe.tracing import Tracing, TracingConfig
from edgescope.replicas.model import Member, ReplicaSet
from otlp import Collector, ReceivedSpan

SERVER, CLIENT = 2, 3  # SpanKind in OTLP


@pytest.fixture
async def collector() -> AsyncIterator[tuple[Collector, str]]:
    receiver = Collector()
    url = await receiver.start(socket.create_server(("127.0.0.1", 0)))
    yield receiver, url
    await receiver.stop()


async def traced(sites: Any, url: str, *names: str, **options: Any) -> list[Any]:
    config = TracingConfig.parse({"otlp_endpoint": url, "max_queue": 100})  # < one batch
    return list(await sites(*names, extensions={n: [Tracing(n, config)] for n in names}, **options))


def one(spans: list[ReceivedSpan], **wanted: Any) -> ReceivedSpan:
    found = [s for s in spans if all(getattr(s, k) == v for k, v in wanted.items())]
    assert len(found) == 1, (wanted, [(s.site, s.name, s.kind) for s in spans])
    return found[0]


async def test_a_call_across_sites_is_one_trace(
    sites: Any, collector: tuple[Collector, str]
) -> None:
    receiver, url = collector
    paris, _corte = await traced(sites, url, "Paris", "Corte")
    status, headers, _ = await paris.get("/image/echo?x=1", headers={"X-Scope": "{image: Corte}"})
    assert status == 200
    spans = await receiver.wait(lambda s: len(s) >= 4)
    at_paris = one(spans, site="Paris", kind=SERVER)
    to_corte = one(spans, site="Paris", kind=CLIENT)
    at_corte = one(spans, site="Corte", kind=SERVER)
    to_glance = one(spans, site="Corte", kind=CLIENT)
    assert {s.trace_id for s in spans} == {at_paris.trace_id}
    assert to_corte.parent_id == at_paris.span_id
    assert at_corte.parent_id == to_corte.span_id  # traceparent crossed the signed hop
    assert to_glance.parent_id == at_corte.span_id
    assert at_paris.name == "image GET" and to_corte.name == "image → Corte"
    assert at_paris.attributes["edgescope.scope"] == "{image: Corte}"
    assert at_paris.attributes["edgescope.route"] == "Corte=200"
    assert at_paris.attributes["http.response.status_code"] == 200
    assert at_paris.attributes["url.path"] == "/echo"  # no query string
    assert at_corte.attributes["edgescope.from_peer"] == "Paris"
    assert to_corte.attributes["edgescope.breaker"] == "closed"
    assert to_corte.attributes["edgescope.breaker.refused"] is False
    assert to_glance.attributes["edgescope.breaker"] == "local"
    assert at_paris.attributes["edgescope.request_id"] == headers["x-openstack-request-id"]
    assert at_paris.start_ns <= to_corte.start_ns <= to_corte.end_ns <= at_paris.end_ns


async def test_a_service_call_joins_the_call_whose_request_id_it_carries(
    sites: Any, collector: tuple[Collector, str]
) -> None:
    """nova passes on the request id, not traceparent: its image call joins the boot."""
    receiver, url = collector
    paris, _corte = await traced(sites, url, "Paris", "Corte")
    status, _, body = await paris.get(
        "/compute/nova/image/echo",
        headers={"X-Scope": "{compute: Paris, image: Corte}", "X-Auth-Token": "user-token"},
    )
    assert status == 200 and body["status"] == 200
    spans = await receiver.wait(lambda s: len(s) >= 6)
    boot = one(spans, site="Paris", kind=SERVER, name="compute GET")
    image = one(spans, site="Paris", kind=SERVER, name="image GET")
    at_corte = one(spans, site="Corte", kind=SERVER)
    assert image.parent_id == boot.span_id
    assert {s.trace_id for s in spans} == {boot.trace_id}
    assert at_corte.trace_id == boot.trace_id


async def test_a_client_traceparent_is_the_parent(
    sites: Any, collector: tuple[Collector, str]
) -> None:
    receiver, url = collector
    [paris] = await traced(sites, url, "Paris")
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    await paris.get("/image/echo", headers={"traceparent": parent})
    spans = await receiver.wait(lambda s: len(s) >= 2)
    call = one(spans, kind=SERVER)
    assert call.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert call.parent_id == "b7ad6b7169203331"


async def test_a_branch_the_breaker_refused_says_so(
    sites: Any, collector: tuple[Collector, str], refused_url: str
) -> None:
    receiver, url = collector
    config = TracingConfig.parse({"otlp_endpoint": url})
    [paris] = await sites(
        "Paris",
        extra_peers={"Paris": {"Lyon": {"url": refused_url}}},
        breaker={"failure_threshold": 1, "open_seconds": 60},
        extensions={"Paris": [Tracing("Paris", config)]},
    )
    for _ in range(2):
        status, _, _ = await paris.get("/image/echo", headers={"X-Scope": "{image: Lyon}"})
        assert status == 503
    spans = await receiver.wait(lambda s: len(s) >= 4)
    branches = sorted((s for s in spans if s.kind == CLIENT), key=lambda s: s.start_ns)
    assert [b.attributes["edgescope.breaker.refused"] for b in branches] == [False, True]
    assert branches[1].attributes["edgescope.breaker"] == "open"
    assert all(b.status_code == 2 for b in branches)  # STATUS_CODE_ERROR
    assert all(s.status_code == 2 for s in spans if s.kind == SERVER)


async def test_a_call_refused_before_any_branch_still_has_its_span(
    sites: Any, collector: tuple[Collector, str]
) -> None:
    receiver, url = collector
    [paris] = await traced(sites, url, "Paris")
    status, _, _ = await paris.get("/image/echo", headers={"X-Scope": "{image: Nowhere}"})
    assert status == 400
    [span] = await receiver.wait(lambda s: len(s) >= 1)
    assert span.kind == SERVER and span.attributes["http.response.status_code"] == 400
    assert span.end_ns >= span.start_ns


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({}, "otlp_endpoint must be an http"),
        ({"otlp_endpoint": "grpc://x:4317"}, "otlp_endpoint must be an http"),
        ({"otlp_endpoint": "http://x:4318/v1/traces", "colour": 1}, "unknown key 'colour'"),
        ({"otlp_endpoint": "http://x:4318/v1/traces", "max_queue": 0}, "tracing.max_queue"),
        ({"otlp_endpoint": "http://x:4318/v1/traces", "sample_ratio": 0}, "tracing.sample_ratio"),
    ],
)
def test_bad_tracing_config_is_named(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TracingConfig.parse(table)


TRACE = "0af7651916cd43dd8448eb211c80319c"
NEVER = 1e-12
"""A sample ratio that keeps no trace of this test run."""


async def with_ratios(sites: Any, url: str, ratios: dict[str, float]) -> list[Any]:
    def tracing(site: str) -> Tracing:
        table = {"otlp_endpoint": url, "max_queue": 100, "sample_ratio": ratios[site]}
        return Tracing(site, TracingConfig.parse(table))

    return list(await sites(*ratios, extensions={n: [tracing(n)] for n in ratios}))


def flags_at_backend(body: dict[str, Any]) -> tuple[str, bool]:
    """(trace id, sampled flag) of the traceparent the backend got."""
    _, trace_id, _, flags = body["headers"]["traceparent"].split("-")
    return trace_id, bool(int(flags, 16) & 1)


async def test_a_clients_sampled_flag_does_not_override_the_ratio(
    sites: Any, collector: tuple[Collector, str]
) -> None:
    """Issue 20, finding 11: a client's ``-01`` kept every trace whatever sample_ratio said.
    The client's traceparent is still the parent (same trace id), but the proxy decides."""
    receiver, url = collector
    [paris] = await with_ratios(sites, url, {"Paris": NEVER})
    for _ in range(20):
        status, _, body = await paris.get(
            "/image/echo", headers={"traceparent": f"00-{TRACE}-b7ad6b7169203331-01"}
        )
        assert status == 200 and flags_at_backend(body) == (TRACE, False)
    # and a client's 00 does not keep a proxy that keeps everything from tracing
    [lyon] = await with_ratios(sites, url, {"Lyon": 1.0})
    status, _, body = await lyon.get(
        "/image/echo", headers={"traceparent": f"00-{TRACE}-b7ad6b7169203331-00"}
    )
    assert status == 200 and flags_at_backend(body) == (TRACE, True)
    spans = await receiver.wait(lambda s: len(s) >= 2)
    assert {s.site for s in spans} == {"Lyon"} and {s.trace_id for s in spans} == {TRACE}


async def test_a_signed_peers_decision_is_followed_both_ways(
    sites: Any, collector: tuple[Collector, str]
) -> None:
    """Where a trace starts decides: Corte follows Paris's flag whatever its own ratio."""
    _, url = collector
    paris, _corte = await with_ratios(sites, url, {"Paris": NEVER, "Corte": 1.0})
    status, _, body = await paris.get("/image/echo", headers={"X-Scope": "{image: Corte}"})
    assert status == 200 and body["site"] == "Corte" and not flags_at_backend(body)[1]
    lyon, _nice = await with_ratios(sites, url, {"Lyon": 1.0, "Nice": NEVER})
    status, _, body = await lyon.get("/image/echo", headers={"X-Scope": "{image: Nice}"})
    assert status == 200 and body["site"] == "Nice" and flags_at_backend(body)[1]


async def test_the_request_ids_remembered_stay_within_remember(
    sites: Any, collector: tuple[Collector, str]
) -> None:
    _, url = collector
    config = TracingConfig.parse({"otlp_endpoint": url, "remember": 2})
    [paris, _corte] = await sites(
        "Paris", "Corte", extensions={"Paris": [Tracing("Paris", config)]}
    )
    for _ in range(5):  # each scoped call gets an id of Paris's own, remembered
        status, _, _ = await paris.get("/image/echo", headers={"X-Scope": "{image: Corte}"})
        assert status == 200
    _, _, text = await paris.get("/metrics")
    assert b'edgescope_bound_size{bound="trace_request_ids"} 2.0' in text
    assert b'edgescope_bound_limit{bound="trace_request_ids"} 2.0' in text
    assert b'edgescope_bound_refused_total{bound="trace_request_ids"} 3.0' in text


async def test_an_extensions_own_call_is_a_span(
    sites: Any, collector: tuple[Collector, str], tmp_path: Path
) -> None:
    """A replica record push (the extension's own signed call to a peer, not a client's)
    is exported as a CLIENT span of the pushing site, with the peer's answer."""
    receiver, url = collector
    paris, _corte = await traced(sites, url, "Paris", "Corte", replicas_dir=tmp_path)
    assert paris.replicas is not None
    record = ReplicaSet(
        "a0000001",
        "image",
        "/v2/images",
        (Member("Paris", "a0000001"), Member("Corte", "c0000001")),
    )
    await paris.replicas.link.store_and_push(record.versioned(paris.replicas.clock.now()))
    spans = await receiver.wait(lambda s: any(x.kind == CLIENT for x in s))
    push = one(spans, site="Paris", kind=CLIENT)
    assert push.name == "send_to_peer → Corte"
    assert push.attributes["edgescope.peer"] == "Corte"
    assert push.attributes["edgescope.origin"] == "send_to_peer"
    assert push.attributes["url.path"] == "/edgescope/replicas/sets"
    assert push.attributes["http.response.status_code"] == 200
    assert push.attributes["edgescope.breaker"] == "closed"
    assert push.start_ns <= push.end_ns
