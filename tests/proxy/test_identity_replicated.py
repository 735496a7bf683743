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

from keystone_undo import USER_ID, queue_keystone_undo

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


async def test_an_undo_by_key_of_a_keystone_create_is_delegated_at_the_peer(
    sites: SitesFactory, tmp_path: Path
) -> None:
    """A failed strict create's undo by key reaches Corte as a Paris admin's replicated
    DELETE: Corte's proxy deletes what the key made with its acting token, as it applied the
    create, not with the Paris token Corte's Keystone refuses (a campaign of 2026-12-07: 401,
    the user was left at Corte)."""
    paris, corte = await sites(
        "Paris", "Corte", identity=True, replicas_dir=tmp_path, delegate_roles={"Corte": ["admin"]}
    )
    await queue_keystone_undo(paris, corte, "paris-admin-token", "paris-admin")
    await paris.replicas.replayer.replay_once()
    [delete] = corte.backend_hits(f"/identity/v3/users/{USER_ID}")
    assert delete["method"] == "DELETE"
    assert delete["headers"]["X-Auth-Token"] == "service-token-of-Corte"
    assert paris.replicas.registry.pending() == []
