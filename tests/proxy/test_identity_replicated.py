"""Delegated identity on *replicated* writes (proxy + edgescope.replicas, issue 6).

With replicas on, an ``&`` write reaches each peer as a replicated peer write (replica
headers), served by ``edgescope.replicas.fanout.serve_peer_write`` rather than
``Dispatcher.run``. It must still pass the proxy's delegation check: a Paris admin acts at
Corte with Corte's service token, a Paris member is refused before Corte's Keystone.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from edgescope.replicas.hooks import STATE_DIR_ENV

SitesFactory = Any

SCOPE = "{identity: Paris & Corte}"


@pytest.fixture(autouse=True)
def replicas_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path))


async def test_replicated_keystone_write_is_delegated_at_the_peer(sites: SitesFactory) -> None:
    paris, corte = await sites("Paris", "Corte", identity=True)
    assert paris.proxy.replicas is not None and corte.proxy.replicas is not None
    headers = {"X-Auth-Token": "paris-admin-token", "X-Scope": SCOPE}
    status, _, body = await paris.request("POST", "/identity/v3/users", json={}, headers=headers)
    assert status == 200, body
    [at_corte] = corte.backend_hits("/identity/v3/users")
    assert at_corte["method"] == "POST"
    assert at_corte["headers"]["X-Auth-Token"] == "service-token-of-Corte"
    # it came as a replica write: Corte remembers its idempotency key (the header itself
    # stops at Corte's proxy)
    registry = corte.proxy.replicas.registry
    with contextlib.closing(sqlite3.connect(registry.path)) as db:
        assert db.execute("SELECT count(*) FROM applied").fetchone() == (1,)
    assert not [n for n in at_corte["headers"] if n.lower().startswith("x-edgescope-")]
    checks = paris.backend_hits("/identity/v3/auth/tokens?nocatalog")
    assert [c["headers"]["X-Subject-Token"] for c in checks] == ["paris-admin-token"]


async def test_replicated_keystone_write_by_a_member_is_refused_at_the_peer(
    sites: SitesFactory,
) -> None:
    paris, corte = await sites("Paris", "Corte", identity=True)
    headers = {"X-Auth-Token": "paris-member-token", "X-Scope": SCOPE}
    status, _, body = await paris.request("POST", "/identity/v3/users", json={}, headers=headers)
    assert status == 403, body
    assert "site Corte refuses POST /v3/users" in body["error"]["message"]
    assert not corte.backend_hits("/identity/v3/users")
