"""Replicated users under real WAN partitions of Paris–Corte, with the real ``openstack`` CLI.

Issue 6's partition tests on the emulated WAN (fixture ``wtb``): both proxies stay up and the
Paris–Corte link is cut (``wtb.wan.partition``), so each side keeps serving its own clients.
Every command is typed inside a site's network namespace (``Sites`` of ``edgescope.demo``),
as that site's admin; every check asks each site itself, from its own namespace, with no
scope, and reads each proxy's replica registry (``edgescope replicas list|pending --url``).

* strict ``&`` create while cut: fails naming Corte; Paris's user is undone, Corte has none,
  no replica set, nothing queued;
* eventual ``&`` create + ``user set --email`` by name while cut: queued for Corte, replayed in
  order once healed, exactly once; the set records both members at both sites;
* conflicting eventual updates on both sides of the cut: both sites converge to the later
  write (last-writer-wins by HLC, ``docs/semantics.md``).

The seconds from heal to convergence are printed (``-s``), not asserted.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from wan_testbed import WanTestbed

from edgescope.demo.probes import Sites, site_outcomes
from edgescope.demo.run import sites_of

pytestmark = [pytest.mark.testbed, pytest.mark.wan, pytest.mark.slow]

PARIS, CORTE = "Paris", "Corte"
USERS = "{keystone: Paris & Corte}"
EVENTUAL = ("--os-scope-mode", "eventual")
EDGESCOPE = str(Path(sys.executable).with_name("edgescope"))
CONVERGE_WITHIN = 90.0
"""Bound of every wait for the replayer after heal (a failure bound, not a performance claim)."""
T = TypeVar("T")


@pytest.fixture
def sites(wtb: WanTestbed) -> Sites:
    return sites_of(wtb.testbed)


@pytest.fixture
def created(wtb: WanTestbed, sites: Sites) -> Iterator[list[str]]:
    """Names of the users a test creates: deleted afterwards (healed first) at both sites."""
    names: list[str] = []
    yield names
    wtb.wan.heal(PARIS, CORTE)
    # let writes a failed test left queued replay first, or they would recreate what we delete
    deadline = time.monotonic() + CONVERGE_WITHIN
    while (pending(wtb, PARIS) or pending(wtb, CORTE)) and time.monotonic() < deadline:
        time.sleep(1)
    for name in names:
        # through `&` first (drops the replica set too), then whatever is left at each site
        sites.run(PARIS, "user", "delete", name, cloud=PARIS, scope=USERS)
        for site in (PARIS, CORTE):
            if users_named(sites, site, name):
                sites.run(site, "user", "delete", name, cloud=site)


def new_user(created: list[str], what: str) -> str:
    name = f"es-wan-{what}-{secrets.token_hex(3)}"
    created.append(name)
    return name


def users_named(sites: Sites, site: str, name: str) -> list[dict[str, Any]]:
    """Every user called ``name`` at ``site``, asked there by its admin, no scope."""
    rows = sites.json(site, "user", "list", "--long", cloud=site)
    return [row for row in rows if row["Name"] == name]


def replicas(wtb: WanTestbed, site: str, what: str) -> list[dict[str, Any]]:
    """``edgescope replicas list|pending --json`` of ``site``: its registry, read-only."""
    registries = str(wtb.testbed.state_dir / "sites")
    proc = subprocess.run(
        [EDGESCOPE, "replicas", what, "--state-dir", registries, "--site", site, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    found: list[dict[str, Any]] = json.loads(proc.stdout)
    return found


def replica_set(wtb: WanTestbed, site: str, any_id: str) -> dict[str, Any] | None:
    """The set ``site``'s proxy records under this handle or member id, if any."""
    for found in replicas(wtb, site, "list"):
        if found["handle"] == any_id or any(m["id"] == any_id for m in found["members"]):
            return found
    return None


def pending(wtb: WanTestbed, site: str, handle: str | None = None) -> list[dict[str, Any]]:
    """Writes queued at ``site``'s proxy (for the set ``handle``, or all), in replay order."""
    queue = replicas(wtb, site, "pending")
    return [op for op in queue if handle is None or op["handle"] == handle]


def states(found: dict[str, Any]) -> dict[str, tuple[str | None, str]]:
    return {m["site"]: (m["id"], m["state"]) for m in found["members"]}


def wait_for(what: str, probe: Callable[[], T | None], within: float = CONVERGE_WITHIN) -> T:
    """Poll ``probe`` until it returns something (not None); fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {within:.0f} s")
        time.sleep(1)


def test_strict_create_while_cut_fails_naming_corte_and_undoes_paris(
    wtb: WanTestbed, sites: Sites, created: list[str]
) -> None:
    name = new_user(created, "strict")
    queued_before = {op["key"] for op in pending(wtb, PARIS)}
    wtb.wan.partition(PARIS, CORTE)
    try:
        result = sites.run(
            PARIS, "user", "create", name, "--password", "pw-strict", "-f", "json",
            cloud=PARIS, scope=USERS,
        )  # fmt: skip
        assert not result.ok, result.stdout
        assert "Corte" in result.stderr, result.stderr
        outcomes = site_outcomes(result.stderr)
        assert outcomes.get(CORTE) == "unreachable", result.stderr
        assert outcomes.get(PARIS, "").endswith(" ok"), result.stderr
        assert "undone: Paris: " in result.stderr and "deleted again" in result.stderr
    finally:
        wtb.wan.heal(PARIS, CORTE)
    # all or nothing: Paris's user was deleted again; nothing queued, nothing reaches Corte
    time.sleep(5)
    assert users_named(sites, PARIS, name) == []
    assert users_named(sites, CORTE, name) == []
    assert {op["key"] for op in pending(wtb, PARIS)} == queued_before


def test_eventual_create_and_update_while_cut_replay_in_order_exactly_once(
    wtb: WanTestbed, sites: Sites, created: list[str]
) -> None:
    name = new_user(created, "eventual")
    email = f"{name}@example.org"
    wtb.wan.partition(PARIS, CORTE)
    try:
        user = sites.json(
            PARIS, *EVENTUAL, "user", "create", name, "--password", "pw-eventual",
            cloud=PARIS, scope=USERS,
        )  # fmt: skip
        handle = user["id"]
        found = replica_set(wtb, PARIS, handle)
        assert found is not None
        assert states(found) == {PARIS: (handle, "present"), CORTE: (None, "pending")}
        # by name, still cut: OSC's lookups are answered by Paris alone (eventual reads)
        updated = sites.run(
            PARIS, *EVENTUAL, "user", "set", "--email", email, name, cloud=PARIS, scope=USERS
        )
        assert updated.ok, updated.stderr
        queued = pending(wtb, PARIS, handle)
        assert [(op["target"], op["method"]) for op in queued] == [
            (CORTE, "POST"),
            (CORTE, "PATCH"),
        ]
        assert users_named(sites, CORTE, name) == []  # Corte, asked in its own namespace
    finally:
        wtb.wan.heal(PARIS, CORTE)
    healed = time.monotonic()
    wait_for("the queue at Paris drained", lambda: pending(wtb, PARIS, handle) == [] or None)
    at_corte = wait_for("the user at Corte", lambda: users_named(sites, CORTE, name) or None)
    print(f"\neventual create + update reached Corte {time.monotonic() - healed:.1f} s after heal")

    assert len(at_corte) == 1, at_corte  # exactly once
    assert at_corte[0]["Email"] == email  # the create, then the update: in order
    [at_paris] = users_named(sites, PARIS, name)
    assert at_paris["ID"] == handle and at_paris["Email"] == email
    corte_id = at_corte[0]["ID"]
    assert corte_id != handle
    for site in (PARIS, CORTE):
        found = replica_set(wtb, site, handle)
        assert found is not None, site
        assert states(found) == {PARIS: (handle, "present"), CORTE: (corte_id, "present")}, site

    deleted = sites.run(PARIS, "user", "delete", name, cloud=PARIS, scope=USERS)
    assert deleted.ok, deleted.stderr
    for site in (PARIS, CORTE):
        assert users_named(sites, site, name) == [], site
        assert replica_set(wtb, site, handle) is None, site


def test_conflicting_updates_on_both_sides_converge_to_the_later_write(
    wtb: WanTestbed, sites: Sites, created: list[str]
) -> None:
    name = new_user(created, "lww")
    user = sites.json(
        PARIS, "user", "create", name, "--password", "pw-lww", cloud=PARIS, scope=USERS
    )
    handle = user["id"]
    for site in (PARIS, CORTE):
        found = replica_set(wtb, site, handle)
        assert found is not None and len(found["members"]) == 2, (site, found)
    first, later = f"paris-{name}@example.org", f"corte-{name}@example.org"

    def emails() -> dict[str, str | None]:
        return {s: users_named(sites, s, name)[0]["Email"] for s in (PARIS, CORTE)}

    wtb.wan.partition(PARIS, CORTE)
    try:
        # each admin, at its own site, updates the one user through `&`: the other side is cut
        for site, email in ((PARIS, first), (CORTE, later)):
            result = sites.run(  # each admin authenticates at its own site (its region)
                site, *EVENTUAL, "user", "set", "--email", email, name, cloud=site, scope=USERS
            )
            assert result.ok, (site, result.stderr)
            other = CORTE if site == PARIS else PARIS
            queued = pending(wtb, site, handle)
            assert [(op["target"], op["method"]) for op in queued] == [(other, "PATCH")], site
        assert emails() == {PARIS: first, CORTE: later}  # diverged while cut
    finally:
        wtb.wan.heal(PARIS, CORTE)
    healed = time.monotonic()

    def converged() -> dict[str, str | None] | None:
        if pending(wtb, PARIS, handle) or pending(wtb, CORTE, handle):
            return None
        seen = emails()
        return seen if len(set(seen.values())) == 1 else None

    final = wait_for("Paris and Corte converged", converged)
    print(f"\nconflicting updates converged {time.monotonic() - healed:.1f} s after heal")
    # Corte's write was made later (greater HLC stamp): last-writer-wins keeps it everywhere
    assert final == {PARIS: later, CORTE: later}

    deleted = sites.run(PARIS, "user", "delete", name, cloud=PARIS, scope=USERS)
    assert deleted.ok, deleted.stderr
    for site in (PARIS, CORTE):
        assert users_named(sites, site, name) == [], site
        assert replica_set(wtb, site, handle) is None, site
