"""Delegated identity on *replicated* writes (proxy + the replicas extension).

With replicas on, an ``&`` write reaches each peer as a replicated peer write (replica
headers), applied through the extension's write guard. It must still pass the proxy's
delegation check: a Paris admin acts at Corte with Corte's service token, a Paris member
is refused before Corte's Keystone.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

SitesFactory = Any

SCOPE = "{identity: Paris & Corte}"


async def test_replicated_keystone_write_is_delegated_at_the_peer(
    sites: SitesFactory, tmp_path: Path
) -> None:
    paris, corte = await sites(
        "Paris", "Corte", identity=True, replicas_dir=tmp_path, delegate_roles={"Corte": ["admin"]}
    )
    headers = {"X-Auth-Token": "paris-admin-token", "X-Scope": SCOPE}
    status, _, body = await paris.request("POST", "/identity/v3/users", json={}, headers=headers)
    assert status == 200, body
    [at_corte] = corte.backend_hits("/identity/v3/users")
    assert at_corte["method"] == "POST"
    assert at_corte["headers"]["X-Auth-Token"] == "service-token-of-Corte"
    # it came as a replica write: Corte remembers its idempotency key (the header itself
    # stops at Corte's proxy)
    registry = corte.replicas.registry
    with contextlib.closing(sqlite3.connect(registry.path)) as db:
        assert db.execute("SELECT count(*) FROM applied").fetchone() == (1,)
    assert not [n for n in at_corte["headers"] if n.lower().startswith("x-edgescope-")]
    checks = paris.backend_hits("/identity/v3/auth/tokens?nocatalog")
    assert [c["headers"]["X-Subject-Token"] for c in checks] == ["paris-admin-token"]


async def test_replicated_keystone_write_by_a_member_is_refused_at_the_peer(
    sites: SitesFactory, tmp_path: Path
) -> None:
    paris, corte = await sites(
        "Paris", "Corte", identity=True, replicas_dir=tmp_path, delegate_roles={"Corte": ["admin"]}
    )
    headers = {"X-Auth-Token": "paris-member-token", "X-Scope": SCOPE}
    status, _, body = await paris.request("POST", "/identity/v3/users", json={}, headers=headers)
    assert status == 403, body
    assert "site Corte refuses POST /v3/users" in body["error"]["message"]
    assert not corte.backend_hits("/identity/v3/users")
