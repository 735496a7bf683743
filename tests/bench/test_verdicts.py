"""bench/verdicts.py: a verdict per stated target, from measured numbers (no benchmark runs)."""

from __future__ import annotations

import doctest
from typing import Any

import bench.verdicts
import pytest
from bench.verdicts import (
    SCOPED,
    TWO_PROXIES_TLS,
    check,
    cpus_shared,
    describe,
    haproxy_verdicts,
    proxy_verdicts,
    scale_verdict,
)

OK = {"failed": None}
"""A row whose every call answered 2xx."""


def latency_rows(scoped_added: float, haproxy_added: float | None, rps: float) -> list[Any]:
    rows: list[dict[str, Any]] = [
        {"path": "direct to backend", "added_p50": 0.0, "rps": 13000, **OK}
    ]
    if haproxy_added is not None:
        rows.append({"path": "HAProxy 1 thread", "added_p50": haproxy_added, "rps": 7500, **OK})
    rows.append({"path": SCOPED, "added_p50": scoped_added, "rps": rps, **OK})
    return rows


def test_every_stated_target_gets_a_verdict() -> None:
    verdicts = proxy_verdicts(
        latency_rows(scoped_added=0.52, haproxy_added=0.12, rps=4401),
        [{"width": 10, "added_p50": 1.5, **OK}, {"width": 1000, "added_p50": 281.81, **OK}],
        [
            {"case": "{image: Refused | Good}, breaker open", "added_p50": 0.08, **OK},
            {"case": "{image: Hole | Good}, black-holed, before breaker", "added_p50": 102.5, **OK},
            {"case": "{image: Hole | Good}, black-holed, breaker open", "added_p50": 6.0, **OK},
        ],
    )
    assert [(describe(v)) for v in verdicts] == [
        "missed by 0.02 ms (measured 0.52 ms; target <= 0.5 ms)",
        "missed by 2.33× (measured 4.33×; target <= 2×)",
        "met (measured 4,401 req/s; target >= 2,000 req/s)",
        "missed by 0.16× (measured 0.59×; target >= 0.75×)",
        "met (measured 1.5 ms; target <= 2 ms)",
        "missed by 182 ms (measured 282 ms; target <= 100 ms)",  # 0.1 ms per branch
        "met (measured 0.08 ms; target <= 5 ms)",
        "missed by 1 ms (measured 6 ms; target <= 5 ms)",
    ]
    assert [v.met for v in verdicts] == [False, False, True, False, True, False, True, False]
    assert "1000 sites" in verdicts[5].target  # the before-breaker case has no target


def test_the_peer_hop_is_what_the_second_proxy_adds_over_mutual_tls() -> None:
    rows = latency_rows(scoped_added=0.3, haproxy_added=0.1, rps=6000)
    rows[-1]["p50"] = 0.8
    rows.append({"path": TWO_PROXIES_TLS, "p50": 2.1, "added_p50": 1.7, "rps": 900, **OK})
    hop = proxy_verdicts(rows, [], [])[4]
    assert "peer hop" in hop.target and hop.measured == pytest.approx(1.3)
    assert describe(hop) == "missed by 0.3 ms (measured 1.3 ms; target <= 1 ms)"
    rows[-1]["failed"] = "1 of 10 calls failed"
    assert proxy_verdicts(rows, [], [])[4].met is None


def test_no_haproxy_means_no_ratio_verdict() -> None:
    verdicts = proxy_verdicts(latency_rows(0.3, None, 2500), [], [])
    ratio = verdicts[1]
    assert ratio.met is None and ratio.measured is None
    assert describe(ratio) == "not measured in this run (target <= 2×)"
    assert [v.met for v in verdicts] == [True, None, True]


@pytest.mark.parametrize(
    ("measured", "comparison", "limit", "met", "missed_by"),
    [
        (0.5, "<=", 0.5, True, 0.0),
        (0.51, "<=", 0.5, False, 0.01),
        (2000, ">=", 2000, True, 0.0),
        (1500, ">=", 2000, False, 500),
    ],
)
def test_check_at_and_past_the_limit(
    measured: float, comparison: Any, limit: float, met: bool, missed_by: float
) -> None:
    verdict = check("t", measured, comparison, limit, "ms")
    assert verdict.met is met and verdict.missed_by == pytest.approx(missed_by)
    assert verdict.as_json()["missed_by"] == pytest.approx(missed_by)


@pytest.mark.parametrize(
    ("other_cpu_seconds", "wall_seconds", "shared"),
    [(0.0, 60.0, False), (14.9, 60.0, False), (15.0, 60.0, True), (90.0, 60.0, True),
     (1.0, 0.0, False)],
)  # fmt: skip
def test_cpus_shared_is_decided_from_measured_cpu_use(
    other_cpu_seconds: float, wall_seconds: float, shared: bool
) -> None:
    assert cpus_shared(other_cpu_seconds, wall_seconds) is shared


def test_doctests() -> None:
    assert doctest.testmod(bench.verdicts).failed == 0


def test_the_fast_path_and_two_proxies_get_their_verdicts() -> None:
    complete = {"fast_path_p50": None, "two_proxies_rps": None}
    verdicts = haproxy_verdicts({"fast_path_p50": 1.03, "two_proxies_rps": 1.2}, complete)
    assert [describe(v) for v in verdicts] == [
        "met (measured 1.03×; target <= 1.05×)",
        "missed by 0.3× (measured 1.2×; target >= 1.5×)",
    ]
    assert [v.met for v in haproxy_verdicts({}, complete)] == [None, None]


FAILED = {"failed": "40 of 40 calls failed, the first: 403 'Paris' is not a peer of Corte"}


def test_no_verdict_on_an_incomplete_run() -> None:
    rows = latency_rows(scoped_added=0.3, haproxy_added=0.1, rps=2500)
    rows[-1].update(FAILED)
    fanout = [{"width": 1000, "added_p50": 1.0, **FAILED}, {"width": 10, "added_p50": 1.0, **OK}]
    failover = [{"case": "{image: Refused | Good}, breaker open", "added_p50": 0.1, **FAILED}]
    verdicts = proxy_verdicts(rows, fanout, failover)
    refused = [v for v in verdicts if v.met is None]
    assert len(refused) == 6 and [v.met for v in verdicts].count(True) == 1  # only `&` to 10
    for verdict in refused:
        assert describe(verdict).startswith("no verdict: 40 of 40 calls failed, the first: 403")
        assert verdict.as_json()["incomplete"] == FAILED["failed"]


def test_a_failed_baseline_or_a_row_that_does_not_say_refuses_the_verdict() -> None:
    rows = latency_rows(scoped_added=0.3, haproxy_added=0.1, rps=2500)
    rows[0].update(FAILED)  # the direct call every added latency is measured from
    hop, ratio, rps, _ = proxy_verdicts(rows, [], [])
    assert hop.met is None and ratio.met is None and rps.met is True
    silent = [{"width": 10, "added_p50": 1.0}]  # no "failed": not known to be complete
    (verdict,) = proxy_verdicts(latency_rows(0.3, 0.1, 2500), silent, [])[4:]
    assert describe(verdict) == (
        "no verdict: not known whether every call succeeded (target <= 2 ms)"
    )


def test_haproxy_verdicts_need_their_rows_complete() -> None:
    ratios = {"fast_path_p50": 1.0, "two_proxies_rps": 2.0}
    fast, pair = haproxy_verdicts(ratios, {"fast_path_p50": "1 of 8 calls failed"})
    assert describe(fast) == "no verdict: 1 of 8 calls failed (target <= 1.05×)"
    assert pair.met is None and "not known" in describe(pair)


def scale_row(**changes: Any) -> dict[str, Any]:
    row = {"width": 999, "calls": 5, "ok": 5, "entry_cpu_ms_per_branch": 0.08,
           "bare_failed": 0, "bare_first_error": None, "raw_failed": 0,
           "raw_first_error": None}  # fmt: skip
    return {**row, **changes}


@pytest.mark.parametrize(
    ("changes", "verdict"),
    [
        ({}, "met (measured 0.08 ms; target <= 0.1 ms)"),
        ({"entry_cpu_ms_per_branch": 0.61},
         "missed by 0.51 ms (measured 0.61 ms; target <= 0.1 ms)"),
        ({"ok": 1}, "no verdict: 4 of 5 `&` calls were incomplete (target <= 0.1 ms)"),
        ({"bare_failed": 3, "bare_first_error": "503 busy"},
         "no verdict: 3 bare baseline calls failed, the first: 503 busy (target <= 0.1 ms)"),
        ({"raw_failed": None},
         "no verdict: not known whether every raw baseline call succeeded (target <= 0.1 ms)"),
        ({"calls": None}, "no verdict: not known whether every call completed (target <= 0.1 ms)"),
    ],
)  # fmt: skip
def test_the_scale_verdict_needs_every_call_and_baseline_complete(
    changes: dict[str, Any], verdict: str
) -> None:
    assert describe(scale_verdict(scale_row(**changes))) == verdict


def test_nothing_unmeasurable_gets_a_number() -> None:
    assert (
        describe(check("t", float("nan"), "<=", 1, "ms"))
        == "not measured in this run (target <= 1 ms)"
    )
