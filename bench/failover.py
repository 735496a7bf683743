"""Figure 3: time ``|`` adds when the first site fails: refused, black-holed (before and
after its breaker opens), or answering 404. Baseline: the good site alone, same proxy,
same run.
"""

from __future__ import annotations

from typing import Any

from bench._harness import edgescope, interleaved_latency, latency, run, site_toml, sites

READ_TIMEOUT = 0.1


def failover_figures() -> list[dict[str, Any]]:
    with sites(2, black_hole=True) as (_, info):
        missing, good = info["ports"]
        hole = info["black_hole"]
        from bench.proxy_latency import free_port

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
        rows: list[dict[str, Any]] = []
        with (
            edgescope(
                site_toml(
                    "Paris",
                    backend=backend,
                    peers=peers,
                    read_timeout=READ_TIMEOUT,
                    extra=never_open,
                )
            ) as (_, plain),
            edgescope(
                site_toml(
                    "Paris",
                    backend=backend,
                    peers=peers,
                    read_timeout=READ_TIMEOUT,
                    extra=opens_once,
                )
            ) as (_, breaker),
        ):
            targets = {
                "{image: Good} (baseline)": (plain + path, {"X-Scope": "{image: Good}"}),
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
            lat = run(lambda: interleaved_latency(targets, 400, rounds=5, warmup=5))
            hole_before = run(
                lambda: latency(plain + path, 8, {"X-Scope": "{image: Hole | Good}"}, warmup=1)
            )
        base = lat["{image: Good} (baseline)"]
        for name, value in lat.items():
            rows.append(
                {
                    "case": name,
                    "p50": value.p50,
                    "p99": value.p99,
                    "added_p50": value.p50 - base.p50,
                    "errors": value.errors,
                }
            )
        rows.insert(
            4,
            {
                "case": f"{{image: Hole | Good}}, black-holed, before breaker "
                f"(read_timeout {READ_TIMEOUT * 1000:.0f} ms)",
                "p50": hole_before.p50,
                "p99": hole_before.p99,
                "added_p50": hole_before.p50 - base.p50,
                "errors": hole_before.errors,
            },
        )
        return rows
