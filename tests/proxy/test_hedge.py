"""Hedged `|` reads: the pure decision (injected clock, no sleep) and real servers."""

from __future__ import annotations

from typing import Any

import pytest

from edgescope.proxy.config import HedgeConfig
from edgescope.proxy.hedge import HedgePolicy, Latencies
from edgescope.proxy.protocol import SITES_HEADER

SitesFactory = Any


def test_p95_of_recent_answers_and_window() -> None:
    latencies = Latencies(samples=100, window=60.0)
    assert latencies.p95("Corte", now=0.0) is None
    for i in range(100):
        latencies.observe("Corte", 0.010 * (i + 1), now=float(i) * 0.1)  # 10 ms .. 1 s
    assert latencies.p95("Corte", now=10.0) == pytest.approx(0.96)
    assert latencies.p95("Marseille", now=10.0) is None  # tracked per site
    assert latencies.p95("Corte", now=10.0, min_samples=101) is None
    # an answer older than the window is forgotten: after 65 s only the last 50 count
    assert latencies.recent("Corte", now=65.0) == pytest.approx(
        [0.010 * (i + 1) for i in range(50, 100)]
    )
    assert latencies.recent("Corte", now=80.0) == []


def test_only_the_newest_samples_are_kept() -> None:
    latencies = Latencies(samples=3, window=60.0)
    for seconds in (5.0, 5.0, 0.1, 0.2, 0.3):
        latencies.observe("Corte", seconds, now=1.0)
    assert latencies.p95("Corte", now=1.0) == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("method", "p95", "delay"),
    [
        ("GET", 0.200, 0.200),  # the site's own p95
        ("HEAD", 0.200, 0.200),
        ("get", 0.200, 0.200),
        ("GET", 0.001, 0.05),  # never sooner than the floor
        ("GET", 30.0, 2.0),  # always by the ceiling (a cut site's p95 is its timeout)
        ("GET", None, 0.5),  # unknown: too few recent answers
        ("POST", 0.200, None),  # writes never hedge
        ("PUT", None, None),
        ("PATCH", 0.2, None),
        ("DELETE", 0.2, None),
    ],
)
def test_hedge_delay(method: str, p95: float | None, delay: float | None) -> None:
    assert HedgePolicy(HedgeConfig()).delay(method, p95) == (
        pytest.approx(delay) if delay is not None else None
    )


def test_max_extra_zero_turns_hedging_off() -> None:
    policy = HedgePolicy(HedgeConfig(max_extra=0))
    assert not policy.may_hedge("GET") and policy.delay("GET", 0.1) is None


async def test_a_slow_first_site_is_raced_by_the_next_and_the_fast_answer_wins(
    sites: SitesFactory,
) -> None:
    """Corte's backend takes 30 s; Marseille's answers at once. The read goes to Corte,
    is not answered within the hedge delay, so Marseille is asked too and answers; Corte's
    call is cancelled (the 30 s are never waited)."""
    paris, corte, marseille = await sites(
        "Paris", "Corte", "Marseille", hedging={"unknown": 0.05}, read_timeout=60.0
    )
    scope = {"X-Scope": "{image: Corte | Marseille}"}
    status, headers, body = await paris.get("/image/slow/Corte?seconds=30", headers=scope)
    assert status == 200 and body["site"] == "Marseille"
    assert headers[SITES_HEADER] == "Marseille=200"  # Corte never answered
    assert [h["site"] for h in corte.seen] == ["Corte"]  # but it was asked first
    assert [h["site"] for h in marseille.seen] == ["Marseille"]
    _, _, metrics = await paris.get("/metrics")
    assert 'edgescope_hedges_total{outcome="won"} 1.0' in metrics.decode()
    # Corte's breaker holds nothing against it: a hedge that lost is no failure
    assert paris.proxy.peers.breaker("Corte").failures == 0


async def test_a_write_never_hedges(sites: SitesFactory) -> None:
    """The same slow Corte, a POST: it waits for Corte's answer and Marseille never sees it."""
    paris, corte, marseille = await sites(
        "Paris", "Corte", "Marseille", hedging={"unknown": 0.05}, read_timeout=60.0
    )
    scope = {"X-Scope": "{image: Corte | Marseille}"}
    status, headers, body = await paris.request(
        "POST", "/image/slow/Corte?seconds=0.5", headers=scope
    )
    assert status == 200 and body == {"site": "Corte", "method": "POST"}
    assert headers[SITES_HEADER] == "Corte=200"
    assert marseille.seen == [] and len(corte.seen) == 1


async def test_hedging_off_waits_for_the_first_site(sites: SitesFactory) -> None:
    paris, _corte, marseille = await sites(
        "Paris", "Corte", "Marseille", hedging={"max_extra": 0}, read_timeout=60.0
    )
    scope = {"X-Scope": "{image: Corte | Marseille}"}
    status, _, body = await paris.get("/image/slow/Corte?seconds=0.5", headers=scope)
    assert status == 200 and body["site"] == "Corte" and marseille.seen == []
