"""Which calls travel on the request-id carrier alone, and where edgescope routes them.

``python -m bench.request_ids --state-dir state-wan`` reads every site proxy's access log of
a testbed (after the demo, the scenario tests or any traffic) and prints one row per kind of
call whose scope came only from its request id (``carrier: request-id``): site, service,
method, path (ids replaced by ``{id}``), how many, and the sites the proxy chose. Those are
the calls a site's HAProxy can only send to edgescope by the form of the id
(docs/deploy.md); a call routed to another site than its own is what the fast path must
not serve locally.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from edgescope.openstack.cli_runner import json_records

_ID = re.compile(
    r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}|(?<=/)\d+(?=/|$)"
)

Key = tuple[str, str, str, str, str]


def access_records(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The proxy's JSON access lines (other lines and other JSON objects are skipped)."""
    return (r for r in json_records(lines) if "carrier" in r and "request_id" in r)


def template(path: str) -> str:
    """``/v2.1/servers/4f0c...`` -> ``/v2.1/servers/{id}`` (query dropped)."""
    return _ID.sub("{id}", path.split("?", 1)[0])


def tally(records: Iterable[dict[str, Any]]) -> Counter[Key]:
    """(site, service, method, path template, chosen sites) -> calls, for the calls whose
    scope came from their request id alone."""
    counts: Counter[Key] = Counter()
    for r in records:
        if r.get("carrier") != "request-id":
            continue
        chosen = ",".join(r.get("sites") or []) or "-"
        counts[(r["site"], r["service"], r["method"], template(str(r["path"])), chosen)] += 1
    return counts


def totals(records: list[dict[str, Any]]) -> dict[str, int]:
    by_carrier = Counter(str(r.get("carrier")) for r in records if r.get("from_peer") is None)
    return dict(sorted(by_carrier.items()))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.request_ids")
    parser.add_argument("--state-dir", type=Path, default=Path("state"))
    args = parser.parse_args()
    records = []
    for log in sorted(args.state_dir.glob("sites/*/log/proxy.log")):
        records += list(access_records(log.read_text(errors="replace").splitlines()))
    counts = tally(records)
    print(f"{len(records)} access lines; calls by carrier (not from peers): {totals(records)}")
    print("| site | service | method | path | calls | routed to |")
    print("|---|---|---|---|---|---|")
    for (site, service, method, path, chosen), n in sorted(counts.items()):
        print(f"| {site} | {service} | {method} | `{path}` | {n} | {chosen} |")
    elsewhere = sum(n for (site, *_, chosen), n in counts.items() if chosen != site)
    print(f"\nrouted by request id to another site than the proxy's own: {elsewhere} call(s)")


if __name__ == "__main__":
    main()
