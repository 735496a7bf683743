"""``python -m bench.swift_cost [--no-write]``: what a site's Swift costs (issue 21).

Starts the loopback Swift bed of the tests (edgescope.testbed.swift: three sites, each a
memcached, Swift's proxy-server and its account, container and object servers from Debian's
packages, and the site's ``edgescope proxy run``) in a temporary folder, and measures:

* the seconds to write the configs and build the rings, and from the first process started
  to every process of every site answering (the sites start together, as in the tests);
* each process's resident memory (RSS) after one upload and one download through each
  site's proxy with the real ``swift`` CLI.

Stores ``bench/results/swift-<UTC time>.json``; a run with any error stores nothing and exits
non-zero. The bed is stopped at the end whatever happens.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import _results
from edgescope.testbed.swift import KEY, USER, SwiftTestbed

SITES = ["Paris", "Corte", "Marseille"]


def _swift(bed: SwiftTestbed, site: str, *args: str) -> None:
    env = {**os.environ, "ST_AUTH": bed.sites[site].auth_url, "ST_USER": USER, "ST_KEY": KEY}
    done = subprocess.run(
        ["swift", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"swift {' '.join(args)} at {site}: {done.stderr[-400:]}")


def measure(port_base: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="swift-cost-") as tmp:
        began = time.monotonic()
        bed = SwiftTestbed.create(Path(tmp), SITES, port_base=port_base)
        written = time.monotonic() - began
        try:
            ready = bed.up()
            payload = Path(tmp) / "payload.bin"
            payload.write_bytes(os.urandom(1 << 20))
            for site in SITES:
                _swift(bed, site, "upload", "bench", str(payload), "--object-name", "o")
                _swift(bed, site, "download", "bench", "o", "-o", str(Path(tmp) / "back"))
            memory = {site: bed.memory(site) for site in SITES}
        finally:
            bed.down()
    mib = {s: {p: round(b / 2**20, 1) for p, b in m.items()} for s, m in memory.items()}
    figures = {
        "sites": SITES,
        "configs_and_rings_seconds": round(written, 1),
        "ready_seconds": {s: round(t, 1) for s, t in ready.items()},
        "rss_mib": mib,
        "rss_mib_per_site": {s: round(sum(m.values()), 1) for s, m in mib.items()},
        "swift_rss_mib_per_site": {
            s: round(sum(v for p, v in m.items() if p != "edgescope"), 1) for s, m in mib.items()
        },
    }
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.swift_cost")
    parser.add_argument("--port-base", type=int, default=16100)
    parser.add_argument("--no-write", action="store_true")
    options = parser.parse_args()
    started = time.time()
    meter = _results.LoadMeter()
    try:
        figures = measure(options.port_base)
    except Exception as exc:  # a failed run has no figures
        print(f"swift cost: failed: {exc}", file=sys.stderr)
        return 1
    load = meter.stop()
    for key, value in figures.items():
        print(f"{key}: {value}")
    print(load.sentence())
    if not options.no_write:
        path = _results.write("swift", "python -m bench.swift_cost", started, load, figures)
        print(f"stored {_results.relative(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
