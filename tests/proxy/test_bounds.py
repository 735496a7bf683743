"""Every bounded map and cache of the proxy reports its size, bound and refusals at
``/metrics`` (docs/security.md, "Limits"), and the bound holds (issue 20)."""

from __future__ import annotations

import re
from typing import Any

from edgescope.proxy.carriers import ScopeMemory

SitesFactory = Any


def bound(text: bytes, family: str, name: str) -> float:
    found = re.search(rf'^edgescope_bound_{family}{{bound="{name}"}} (\S+)$', text.decode(), re.M)
    assert found is not None, (family, name)
    return float(found.group(1))


def test_the_scope_memory_stays_within_its_bounds_and_counts_what_it_forgets() -> None:
    memory = ScopeMemory(capacity=8, per_owner=3)
    for i in range(20):
        memory.remember(f"req-a{i}", "{image: Corte}", owner="flooder")
    assert len(memory) == 3 and memory.evicted == 17  # the flooder evicts its own
    for i in range(20):
        memory.remember(f"req-b{i}", "{image: Corte}", owner=f"client-{i}")
    assert len(memory) == 8 and memory.evicted == 17 + 15


async def test_the_proxys_bounded_maps_are_reported_and_hold(sites: SitesFactory) -> None:
    paris, _corte = await sites("Paris", "Corte")
    scopes = [f"{{image: Corte, compute: Paris, network: P{i}}}" for i in range(3)]
    for scope in ["{image: Corte}", *scopes]:
        await paris.get("/image/echo", headers={"X-Scope": scope})
    _, _, text = await paris.get("/metrics")
    assert bound(text, "size", "scope_memory") == 4  # one correlation id per scoped call
    assert bound(text, "limit", "scope_memory") == 10_000
    assert bound(text, "refused_total", "scope_memory") == 0
    assert (
        1 <= bound(text, "size", "scope_parse_cache") <= bound(text, "limit", "scope_parse_cache")
    )
    assert bound(text, "limit", "scope_text_cache") == 4096
    for name in ("spools", "spool_bytes", "connections_main"):
        assert bound(text, "size", name) <= bound(text, "limit", name)
