"""Hedged `|` reads: the pure decision (injected clock, no sleep) and real servers."""

from __future__ import annotations

from typing import Any

import pytest

from edgescope.proxy.config import HedgeConfig
from edgescope.proxy.hedge import HedgePolicy, Latencies, overtaken
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


@pytest.mark.parametrize("p95", [None, 0.2, 30.0])
def test_a_suspect_site_is_raced_at_once(p95: float | None) -> None:
    """A suspect site (a failure or an abandoned read since its last success) gets the floor,
    whatever its p95: under a cut, reads do not each wait the lossy link's p95 first."""
    policy = HedgePolicy(HedgeConfig(floor=0.05))
    assert policy.delay("GET", p95, suspect=True) == pytest.approx(0.05)
    assert policy.delay("POST", p95, suspect=True) is None  # writes still never hedge


@pytest.mark.parametrize(
    ("branches", "winner", "abandoned"),
    [
        ([("Corte", "cancelled"), ("Marseille", "")], "Marseille", ["Corte"]),
        ([("Corte", ""), ("Marseille", "cancelled")], "Corte", []),  # the hedge lost
        ([("Corte", "refused"), ("Marseille", "")], "Marseille", []),  # failed: not abandoned
        (
            [("A", "cancelled"), ("B", "cancelled"), ("C", "")],
            "C",
            ["A", "B"],
        ),
        ([("Corte", "cancelled")], "Marseille", []),  # the winner is not among them
        ([], "Corte", []),
    ],
)
def test_overtaken_sites(
    branches: list[tuple[str, str]], winner: str, abandoned: list[str]
) -> None:
    assert overtaken(branches, winner) == abandoned


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
    # Corte's breaker holds nothing against it: a hedge that lost is no failure; but the
    # read abandoned Corte, which is suspect until its next success
    breaker = paris.proxy.peers.breaker("Corte")
    assert breaker.failures == 0 and breaker.state == "closed" and breaker.suspect
    status, _, body = await paris.get("/image/x", headers={"X-Scope": "{image: Corte}"})
    assert status == 200 and not breaker.suspect  # Corte answered: no longer suspect


async def test_a_suspect_site_is_raced_at_once_through_the_proxies(sites: SitesFactory) -> None:
    """Corte is suspect (a read abandoned it); its backend takes 30 s and its hedge delay is
    60 s: the read still asks Marseille at once, and Marseille's answer comes back well
    within the client's 10 s (without the suspicion it would wait the 60 s)."""
    import aiohttp

    paris, corte, marseille = await sites(
        "Paris",
        "Corte",
        "Marseille",
        hedging={"unknown": 60.0, "ceiling": 60.0},
        read_timeout=60.0,
    )
    paris.proxy.peers.breaker("Corte").record_abandoned()
    scope = {"X-Scope": "{image: Corte | Marseille}"}
    status, _, body = await paris.get(
        "/image/slow/Corte?seconds=30", headers=scope, timeout=aiohttp.ClientTimeout(total=10)
    )
    assert status == 200 and body["site"] == "Marseille"
    assert [h["site"] for h in corte.seen] == ["Corte"]  # Corte was asked as well
    assert [h["site"] for h in marseille.seen] == ["Marseille"]


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
