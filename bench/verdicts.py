"""The targets the project states for the proxy, and verdicts on measured figures. Pure.

    >>> v = check("edgescope added p50", 0.52, "<=", 0.5, "ms")
    >>> v.met, describe(v)
    (False, 'missed by 0.02 ms (measured 0.52 ms; target <= 0.5 ms)')

:func:`proxy_verdicts` takes the rows ``python -m bench`` measured (figures 1-3) and returns
one verdict per target; :func:`cpus_shared` decides from measured CPU use whether other work
shared the machine during a run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

Comparison = Literal["<=", ">="]

SCOPED = "edgescope, X-Scope {image: Paris} (local)"
"""Figure 1's row for edgescope routing a call with a scope (the targets' subject)."""
HAPROXY_PREFIX = "HAProxy"
MAX_ADDED_P50_MS = 0.5
MAX_RATIO_TO_HAPROXY = 3.0
MIN_REQUESTS_PER_S = 2000.0
MAX_FANOUT_OVERHEAD_MS = 2.0
"""``&`` fan-out: latency ~ slowest site + 2 ms."""
MAX_FAILOVER_ADDED_MS = 5.0
"""``|`` fail-over once the first site's breaker is open."""
SHARED_CPUS = 0.25
"""Other work using at least this many CPUs on average during a run means it shared them."""


@dataclass(frozen=True)
class Verdict:
    target: str
    measured: float | None
    """None when the figure could not be measured in this run."""
    comparison: Comparison
    limit: float
    unit: str
    met: bool | None

    @property
    def missed_by(self) -> float:
        """How far the measured value is on the wrong side of the limit (0 when met)."""
        if self.measured is None or self.met:
            return 0.0
        return abs(self.measured - self.limit)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "missed_by": self.missed_by}


def check(
    target: str, measured: float | None, comparison: Comparison, limit: float, unit: str
) -> Verdict:
    """One verdict: is ``measured`` on the right side of ``limit``?"""
    if measured is None:
        return Verdict(target, None, comparison, limit, unit, None)
    met = measured <= limit if comparison == "<=" else measured >= limit
    return Verdict(target, measured, comparison, limit, unit, met)


def _number(value: float, unit: str) -> str:
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{round(value, 2):g}"
    return f"{text}×" if unit == "×" else f"{text} {unit}"


def describe(verdict: Verdict) -> str:
    """``met (measured 0.41 ms; target <= 0.5 ms)`` or ``missed by 0.02 ms (...)``."""
    target = f"target {verdict.comparison} {_number(verdict.limit, verdict.unit)}"
    if verdict.measured is None:
        return f"not measured in this run ({target})"
    measured = f"measured {_number(verdict.measured, verdict.unit)}"
    if verdict.met:
        return f"met ({measured}; {target})"
    return f"missed by {_number(verdict.missed_by, verdict.unit)} ({measured}; {target})"


def proxy_verdicts(
    latency: Sequence[Mapping[str, Any]],
    fanout: Sequence[Mapping[str, Any]],
    failover: Sequence[Mapping[str, Any]],
) -> list[Verdict]:
    """A verdict for every target of figures 1-3 (docs/benchmarks.md)."""
    by_path = {row["path"]: row for row in latency}
    scoped = by_path[SCOPED]
    haproxy = next((r for r in latency if str(r["path"]).startswith(HAPROXY_PREFIX)), None)
    ratio = (
        scoped["added_p50"] / haproxy["added_p50"]
        if haproxy is not None and haproxy["added_p50"] > 0
        else None
    )
    verdicts = [
        check("edgescope's added p50, one hop with a scope", scoped["added_p50"], "<=",
              MAX_ADDED_P50_MS, "ms"),
        check("edgescope's added p50 against HAProxy's", ratio, "<=", MAX_RATIO_TO_HAPROXY, "×"),
        check("throughput with a scope, one core", scoped["rps"], ">=", MIN_REQUESTS_PER_S,
              "req/s"),
    ]  # fmt: skip
    for row in fanout:
        verdicts.append(
            check(
                f"`&` to {row['width']} site{'s' if row['width'] != 1 else ''}: "
                "p50 over the slowest site alone",
                row["added_p50"],
                "<=",
                MAX_FANOUT_OVERHEAD_MS,
                "ms",
            )
        )
    for row in failover:
        if "breaker open" in row["case"]:
            verdicts.append(
                check(
                    f"`|` fail-over, {row['case']}: p50 added",
                    row["added_p50"],
                    "<=",
                    MAX_FAILOVER_ADDED_MS,
                    "ms",
                )
            )
    return verdicts


def cpus_shared(other_cpu_seconds: float, wall_seconds: float) -> bool:
    """Whether other work (outside the benchmark's own processes) shared the CPUs: it used
    at least :data:`SHARED_CPUS` CPUs on average over the run."""
    if wall_seconds <= 0:
        return False
    return other_cpu_seconds / wall_seconds >= SHARED_CPUS


MAX_FAST_PATH_RATIO = 1.05
"""A 1-DC (unscoped) call through HAProxy with the fast path, over plain HAProxy (p50)."""
MIN_TWO_PROXIES_RATIO = 1.5
"""Scoped throughput with two proxies of a site behind HAProxy, over one."""


def haproxy_verdicts(ratios: Mapping[str, float]) -> list[Verdict]:
    """The targets of issue 12's benchmark (bench/haproxy.py): the fast path costs unscoped
    calls nothing measurable, and a second proxy of the site adds throughput."""
    return [
        check("1-DC call through HAProxy with the fast path, over plain HAProxy (p50)",
              ratios.get("fast_path_p50"), "<=", MAX_FAST_PATH_RATIO, "×"),
        check("scoped throughput, two proxies of the site behind HAProxy over one",
              ratios.get("two_proxies_rps"), ">=", MIN_TWO_PROXIES_RATIO, "×"),
    ]  # fmt: skip
