"""``openstack --os-scope '{... around(...)}'`` and ``nearest(...)`` through the real CLI and
real proxies: the plugin checks the forms (bad radius, unknown site: refused before any
request) and sends them unchanged; the entry proxy resolves them from its own measurements.

The command is ``container list`` against the generic backend's ``/image/items`` (as in
test_partial_cli.py: the backend is no OpenStack imitation, the command only needs a JSON
answer); what is checked is where the proxies sent the call.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_partial_cli import _openstack

SitesFactory = Any
ALL = frozenset({"image", "compute", "identity"})


def _cli(paris: Any, scope: str) -> list[str]:
    return [
        "--os-auth-type", "admin_token", "--os-token", "tok123",
        "--os-endpoint", f"{paris.url}/image/items", "--os-region-name", "Paris",
        "--os-scope-sites", "Paris,Corte,Marseille", "--os-scope", scope,
        "container", "list", "-f", "value",
    ]  # fmt: skip


@pytest.mark.slow
async def test_the_cli_sends_around_and_nearest_as_written(sites: SitesFactory) -> None:
    paris, corte, marseille = await sites("Paris", "Corte", "Marseille")
    paris.proxy.prober.record("Marseille", 10.0, ALL)
    paris.proxy.prober.record("Corte", 20.0, ALL)
    around = "{image: around(Paris, 15 ms)}"  # the endpoint is /image: Paris has no swift
    code, _, err = await _openstack(*_cli(paris, around))
    assert code == 0, err
    assert paris.seen, err
    assert marseille.seen and not corte.seen  # resolved at Paris: Paris & Marseille

    nearest = "{image: nearest(Corte, Marseille)}"
    before = len(marseille.seen)
    code, _, err = await _openstack(*_cli(paris, nearest))
    assert code == 0, err
    assert len(marseille.seen) == before + 1 and not corte.seen  # Marseille is nearer

    code, _, err = await _openstack(*_cli(paris, "{image: around(Paris, 0ms)}"))
    assert code != 0 and "radius" in err and "Traceback" not in err
    code, _, err = await _openstack(*_cli(paris, "{image: around(Lyon, 15ms)}"))
    assert code != 0 and "unknown site 'Lyon'" in err and "Traceback" not in err
