"""Figure 3: time ``|`` adds when the first site fails: refused, black-holed (before and
after its breaker opens), or answering 404. Baseline: the good site alone, same proxy,
same run.
"""

from __future__ import annotations

from typing import Any

from bench._harness import (
    Latency,
    edgescope,
    free_port,
    interleaved_latency,
    latency,
    minus,
    run,
    site_toml,
    sites,
)

READ_TIMEOUT = 0.1
"""The black hole's read timeout; the other sites keep the default (30 s), so a good site
that answers late on a loaded machine is slow, not a failure."""
BASELINE = "{image: Good} (baseline)"


def failover_figures(smoke: bool = False) -> list[dict[str, Any]]:
    with sites(2, black_hole=True) as (_, info):
        missing, good = info["ports"]
        hole = info["black_hole"]
        peers = {
            "Good": f"http://127.0.0.1:{good}",
            "Missing": f"http://127.0.0.1:{missing}",
            "Refused": f"http://127.0.0.1:{free_port()}",
            "Hole": f"http://127.0.0.1:{hole}",
        }
        backend = f"http://127.0.0.1:{good}"
        never_open = "[breaker]\nprobe_interval = 0\nfailure_threshold = 1000000"
        opens_once = "[breaker]\nprobe_interval = 0\nfailure_threshold = 1\nopen_seconds = 3600"
        path = "/image/items/missing0"  # 404 at Missing, 200 at Good
        with (
            edgescope(
                site_toml(
                    "Paris",
                    backend=backend,
                    peers=peers,
                    read_timeouts={"Hole": READ_TIMEOUT},
                    extra=never_open,
                )
            ) as (_, plain),
            edgescope(
                site_toml(
                    "Paris",
                    backend=backend,
                    peers=peers,
                    read_timeouts={"Hole": READ_TIMEOUT},
                    extra=opens_once,
                )
            ) as (_, breaker),
        ):
            targets = {
                BASELINE: (plain + path, {"X-Scope": "{image: Good}"}),
                "{image: Missing | Good}, 404 first": (
                    plain + path,
                    {"X-Scope": "{image: Missing | Good}"},
                ),
                "{image: Refused | Good}, refused first, no breaker": (
                    plain + path,
                    {"X-Scope": "{image: Refused | Good}"},
                ),
                "{image: Refused | Good}, breaker open": (
                    breaker + path,
                    {"X-Scope": "{image: Refused | Good}"},
                ),
                "{image: Hole | Good}, black-holed, breaker open": (
                    breaker + path,
                    {"X-Scope": "{image: Hole | Good}"},
                ),
            }
            n, rounds, warmup = (3, 1, 2) if smoke else (400, 5, 5)
            lat = run(lambda: interleaved_latency(targets, n, rounds, warmup))
            hole_before = run(
                lambda: latency(
                    plain + path, 2 if smoke else 8, {"X-Scope": "{image: Hole | Good}"}, warmup=1
                )
            )
        base = lat[BASELINE]
        rows = [row(name, value, base) for name, value in lat.items()]
        ms = READ_TIMEOUT * 1000
        before = f"{{image: Hole | Good}}, black-holed, before breaker (read_timeout {ms:.0f} ms)"
        rows.insert(4, row(before, hole_before, base))
        return rows


def row(case: str, value: Latency, base: Latency) -> dict[str, Any]:
    """One case's figures; it fails when its calls or the baseline's did not all succeed."""
    baseline = base.tally.incomplete()
    return {
        "case": case,
        "p50": value.p50,
        "p99": value.p99,
        "added_p50": minus(value.p50, base.p50),
        **value.tally.as_json(),
        "failed": value.tally.incomplete() or (baseline and f"the baseline: {baseline}"),
    }
