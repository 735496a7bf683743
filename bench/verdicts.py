"""The targets the project states for the proxy, and verdicts on measured figures. Pure.

    >>> v = check("edgescope added p50", 0.52, "<=", 0.5, "ms")
    >>> v.met, describe(v)
    (False, 'missed by 0.02 ms (measured 0.52 ms; target <= 0.5 ms)')
    >>> describe(check("edgescope added p50", 0.3, "<=", 0.5, "ms", incomplete="1 of 9 failed"))
    'no verdict: 1 of 9 failed (target <= 0.5 ms)'

A verdict needs a complete run: when a figure's calls did not all succeed (its row's
``failed``, bench/_tally.py) there is no verdict, only why. :func:`proxy_verdicts` takes the
rows ``python -m bench`` measured (figures 1-3) and returns one verdict per target;
:func:`scale_verdict` judges ``python -m bench.scale``'s widest ``&``; :func:`cpus_shared`
decides from measured CPU use whether other work shared the machine during a run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from bench._tally import first_failed

Comparison = Literal["<=", ">="]

SCOPED = "edgescope, X-Scope {image: Paris} (local)"
"""Figure 1's row for edgescope routing a call with a scope (the targets' subject)."""
SCOPED_ASYNCIO = "edgescope, X-Scope {image: Paris} (local), asyncio's own loop"
TWO_PROXIES = "edgescope -> edgescope, {image: Corte} (2 proxies, signed)"
TWO_PROXIES_TLS = "edgescope -> edgescope, {image: Corte} (2 proxies, signed, mutual TLS)"
"""Figure 1's rows for a peer hop: what the second proxy adds (issue 23's target)."""
HAPROXY_PREFIX = "HAProxy"
MAX_ADDED_P50_MS = 0.5
MAX_RATIO_TO_HAPROXY = 2.0
"""Issue 23 (issue 3 had 3×)."""
MIN_REQUESTS_PER_S = 2000.0
MIN_RPS_RATIO_TO_HAPROXY = 0.75
"""Issue 23: throughput with a scope over one-thread HAProxy's, same run."""
MAX_PEER_HOP_MS = 1.0
"""Issue 23: what a peer hop (the second proxy, signed, over mutual TLS) adds to p50."""
MAX_FANOUT_OVERHEAD_MS = 2.0
MAX_FANOUT_MS_PER_BRANCH = 0.1
"""``&`` fan-out: latency ~ slowest site + max(2 ms, 0.1 ms per branch) (issue 23)."""
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
    incomplete: str | None = None
    """Why there is no verdict: the run that measured it was not complete."""

    @property
    def missed_by(self) -> float:
        """How far the measured value is on the wrong side of the limit (0 when met)."""
        if self.measured is None or self.met:
            return 0.0
        return abs(self.measured - self.limit)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "missed_by": self.missed_by}


def check(
    target: str,
    measured: float | None,
    comparison: Comparison,
    limit: float,
    unit: str,
    *,
    incomplete: str | None = None,
) -> Verdict:
    """One verdict: is ``measured`` on the right side of ``limit``? None (no verdict) when
    ``incomplete`` says why the run was not complete, or nothing was measured."""
    if incomplete is not None:
        return Verdict(target, None, comparison, limit, unit, None, incomplete)
    if measured is None or not math.isfinite(measured):
        return Verdict(target, None, comparison, limit, unit, None)
    met = measured <= limit if comparison == "<=" else measured >= limit
    return Verdict(target, measured, comparison, limit, unit, met)


def _number(value: float, unit: str) -> str:
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{round(value, 2):g}"
    return f"{text}×" if unit == "×" else f"{text} {unit}"


def describe(verdict: Verdict) -> str:
    """``met (measured 0.41 ms; target <= 0.5 ms)`` or ``missed by 0.02 ms (...)``."""
    target = f"target {verdict.comparison} {_number(verdict.limit, verdict.unit)}"
    if verdict.incomplete is not None:
        return f"no verdict: {verdict.incomplete} ({target})"
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
    base, scoped = (latency[0] if latency else None), by_path.get(SCOPED)
    haproxy = next((r for r in latency if str(r["path"]).startswith(HAPROXY_PREFIX)), None)
    added = None if scoped is None else scoped["added_p50"]
    ratio = (
        added / haproxy["added_p50"]
        if added is not None and haproxy is not None and (haproxy["added_p50"] or 0) > 0
        else None
    )
    hop_why = first_failed([base, scoped])
    ratio_why = hop_why or (first_failed([haproxy]) if haproxy is not None else None)
    verdicts = [
        check("edgescope's added p50, one hop with a scope", added, "<=", MAX_ADDED_P50_MS, "ms",
              incomplete=hop_why),
        check("edgescope's added p50 against HAProxy's", ratio, "<=", MAX_RATIO_TO_HAPROXY, "×",
              incomplete=ratio_why),
        check("throughput with a scope, one core", None if scoped is None else scoped["rps"],
              ">=", MIN_REQUESTS_PER_S, "req/s", incomplete=first_failed([scoped])),
    ]  # fmt: skip
    if haproxy is not None:
        rps_ratio = scoped["rps"] / haproxy["rps"] if scoped and haproxy["rps"] else None
        verdicts.append(
            check("throughput with a scope against one-thread HAProxy's", rps_ratio, ">=",
                  MIN_RPS_RATIO_TO_HAPROXY, "×", incomplete=first_failed([scoped, haproxy]))
        )  # fmt: skip
    hop = by_path.get(TWO_PROXIES_TLS)
    if hop is not None:
        hop_added = minus_p50(hop, scoped)
        verdicts.append(
            check("a peer hop (2nd proxy, signed, mutual TLS): p50 added", hop_added, "<=",
                  MAX_PEER_HOP_MS, "ms", incomplete=first_failed([hop, scoped]))
        )  # fmt: skip
    for row in fanout:
        verdicts.append(
            check(
                f"`&` to {row['width']} site{'s' if row['width'] != 1 else ''}: "
                "p50 over the slowest site alone",
                row["added_p50"],
                "<=",
                max(MAX_FANOUT_OVERHEAD_MS, MAX_FANOUT_MS_PER_BRANCH * row["width"]),
                "ms",
                incomplete=first_failed([row]),
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
                    incomplete=first_failed([row]),
                )
            )
    return verdicts


def minus_p50(row: Mapping[str, Any], base: Mapping[str, Any] | None) -> float | None:
    """``row``'s p50 over ``base``'s (None when either is unknown)."""
    if base is None or row.get("p50") is None or base.get("p50") is None:
        return None
    return float(row["p50"]) - float(base["p50"])


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


def haproxy_verdicts(
    ratios: Mapping[str, float | None], incomplete: Mapping[str, str | None]
) -> list[Verdict]:
    """The targets of issue 12's benchmark (bench/haproxy.py): the fast path costs unscoped
    calls nothing measurable, and a second proxy of the site adds throughput. ``incomplete``
    says, per ratio, why the rows it compares were not complete (a missing key: unknown,
    so no verdict either)."""
    unknown = "not known whether every call of its paths succeeded"
    return [
        check("1-DC call through HAProxy with the fast path, over plain HAProxy (p50)",
              ratios.get("fast_path_p50"), "<=", MAX_FAST_PATH_RATIO, "×",
              incomplete=incomplete.get("fast_path_p50", unknown)),
        check("scoped throughput, two proxies of the site behind HAProxy over one",
              ratios.get("two_proxies_rps"), ">=", MIN_TWO_PROXIES_RATIO, "×",
              incomplete=incomplete.get("two_proxies_rps", unknown)),
    ]  # fmt: skip


TARGET_MS_PER_BRANCH = 0.1
"""Issue 14: at most ~0.1 ms of entry-proxy CPU per branch of an ``&``."""


def scale_verdict(row: Mapping[str, Any]) -> Verdict:
    """``python -m bench.scale``'s target, judged on its widest ``&`` (a row of its
    ``fanout`` figures): only when every call of that row, and of its bare baselines,
    completed (all branches answered)."""
    return check(
        f"entry-proxy CPU per branch of an `&` over {row['width']} sites",
        row.get("entry_cpu_ms_per_branch"),
        "<=",
        TARGET_MS_PER_BRANCH,
        "ms",
        incomplete=scale_incomplete(row),
    )


def scale_incomplete(row: Mapping[str, Any]) -> str | None:
    """Why a scale ``&`` row is not a complete run, or None."""
    calls, ok = row.get("calls"), row.get("ok")
    if not isinstance(calls, int) or not isinstance(ok, int):
        return "not known whether every call completed"
    if ok != calls:
        return f"{calls - ok} of {calls} `&` calls were incomplete"
    for baseline in ("bare", "raw"):
        failed = row.get(f"{baseline}_failed")
        if failed is None:
            return f"not known whether every {baseline} baseline call succeeded"
        if failed:
            first = row.get(f"{baseline}_first_error")
            return f"{failed} {baseline} baseline calls failed, the first: {first}"
    return None
