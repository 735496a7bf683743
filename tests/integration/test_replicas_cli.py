"""Replicated resources through the real ``openstack`` CLI on the 3-site testbed (issue 6).

What ``&`` creates is then used by name or by its handle as ONE resource: every step is
checked at each site with that site's own admin cloud and no scope (the real state), and in
each site's replica registry (``edgescope replicas show --url <proxy>``).

Needs the testbed proxies to run with replicas on (``EDGESCOPE_REPLICAS_DIR``, set by
``edgescope.testbed.services``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from edgescope.openstack.scenarios import (
    BOOT,
    CORTE,
    MARSEILLE,
    PARIS,
    Context,
    server_image_id,
    small_image_file,
)

pytestmark = [pytest.mark.testbed, pytest.mark.slow]
USERS = "{keystone: Paris & Corte}"
IMAGES = "{glance: Paris & Corte}"
EDGESCOPE = str(Path(sys.executable).with_name("edgescope"))


def registry_of(ctx: Context, site: str) -> list[str]:
    """The options naming ``site``'s replica registry (read-only, safe while it runs)."""
    return ["--state-dir", str(ctx.testbed.clouds_yaml.parent / "sites"), "--site", site]


def replica_set(ctx: Context, site: str, handle: str) -> dict[str, Any] | None:
    """The set as ``site``'s proxy records it, or None when it has none by that id."""
    proc = subprocess.run(
        [EDGESCOPE, "replicas", "show", handle, *registry_of(ctx, site), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        assert "no replica set" in proc.stderr, proc.stderr
        return None
    found: dict[str, Any] = json.loads(proc.stdout)
    return found


def pending_at(ctx: Context, site: str, handle: str) -> list[dict[str, Any]]:
    """The writes ``site``'s proxy has queued (eventual mode) for the set ``handle``."""
    proc = subprocess.run(
        [EDGESCOPE, "replicas", "pending", *registry_of(ctx, site), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [op for op in json.loads(proc.stdout) if op["handle"] == handle]


def members(found: dict[str, Any]) -> dict[str, str]:
    return {m["site"]: m["id"] for m in found["members"] if m["state"] == "present"}


def shown_at(ctx: Context, kind: str, name: str, site: str) -> dict[str, Any] | None:
    """``openstack <kind> show NAME`` by ``site``'s admin, no scope; None when not found."""
    result = ctx.cli.run(kind, "show", name, "-f", "json", cloud=ctx.admin(site), check=False)
    if not result.ok:
        assert "No " in result.stderr or "404" in result.stderr, result.stderr
        return None
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def test_user_lifecycle_by_name_through_paris_and_corte(ctx: Context) -> None:
    name = f"Alice-{ctx.run_id}"
    admin = ctx.admin(PARIS)
    ctx.created += [("user", ctx.admin(PARIS), name), ("user", ctx.admin(CORTE), name)]

    created = ctx.cli.json("user", "create", name, "--password=pw-1", cloud=admin, scope=USERS)
    handle = created["id"]
    paris, corte = (shown_at(ctx, "user", name, site) for site in (PARIS, CORTE))
    assert paris is not None and corte is not None
    assert paris["id"] == handle and corte["id"] != handle  # each Keystone chose its own id
    assert shown_at(ctx, "user", name, MARSEILLE) is None
    for site in (PARIS, CORTE):  # the set is recorded at every member site
        found = replica_set(ctx, site, handle)
        assert found is not None and members(found) == {PARIS: handle, CORTE: corte["id"]}
    assert replica_set(ctx, MARSEILLE, handle) is None

    # show by name: OSC's name lookup finds one user (the merged list is collapsed)
    shown = ctx.cli.json("user", "show", name, cloud=admin, scope=USERS)
    assert shown["id"] == handle and shown["name"] == name
    listed = ctx.cli.json("user", "list", cloud=admin, scope=USERS)
    mine = [row for row in listed if row["Name"] == name]
    assert len(mine) == 1, mine
    assert mine[0]["ID"] == handle

    ctx.cli.run("user", "set", "--email", "alice@example.org", name, cloud=admin, scope=USERS)
    for site in (PARIS, CORTE):
        after = shown_at(ctx, "user", name, site)
        assert after is not None and after["email"] == "alice@example.org", (site, after)

    ctx.cli.run("user", "delete", name, cloud=admin, scope=USERS)
    for site in (PARIS, CORTE):
        assert shown_at(ctx, "user", name, site) is None, site
        assert replica_set(ctx, site, handle) is None, site


def test_image_created_at_paris_and_corte_boots_by_its_handle_at_each_site(ctx: Context) -> None:
    name = ctx.name("replica-img")
    admin = ctx.admin(PARIS)
    ctx.created += [("image", ctx.admin(PARIS), name), ("image", ctx.admin(CORTE), name)]
    # no --id: the sites choose their own ids, the upload that follows goes to the handle
    created = ctx.cli.json(
        "image", "create", name, "--file", str(small_image_file()), "--disk-format", "raw",
        "--container-format", "bare", cloud=admin, scope=IMAGES,
    )  # fmt: skip
    handle = created["id"]
    ids = {}
    for site in (PARIS, CORTE):
        image = shown_at(ctx, "image", name, site)
        assert image is not None and image["status"] == "active", (site, image)
        ids[site] = image["id"]
    assert ids[PARIS] == handle != ids[CORTE]
    found = replica_set(ctx, CORTE, handle)
    assert found is not None and members(found) == ids

    servers = []
    try:
        for site in (PARIS, CORTE):
            server = ctx.cli.json(
                "server", "create", ctx.name(f"replica-boot-{site.lower()}"), *BOOT,
                "--image", handle, cloud=admin, scope=f"{{nova: {site}, glance: {site}}}",
                timeout=300,
            )  # fmt: skip
            servers.append((site, server["id"]))
            assert server["status"] == "ACTIVE", server
            # the server really runs at `site`, from that site's own copy of the image
            assert server_image_id(ctx, server["id"], site) == ids[site]
    finally:
        for site, server_id in servers:
            ctx.cli.run("server", "delete", "--wait", server_id, cloud=ctx.admin(site), check=False)

    ctx.cli.run("image", "delete", name, cloud=admin, scope=IMAGES)
    for site in (PARIS, CORTE):
        assert shown_at(ctx, "image", name, site) is None, site
        assert replica_set(ctx, site, handle) is None, site


def test_partition_strict_reports_eventual_replays_in_order_exactly_once(ctx: Context) -> None:
    """Corte's proxy stopped = Corte cut off from Paris (the control plane; nothing else of
    Corte is touched). Strict fails with the report; eventual creates and updates at Paris,
    queues both for Corte, keeps them across a restart of Paris's proxy, and replays them in
    order once Corte is back: the user exists at Corte exactly once, updated."""
    strict_name, name = f"Bob-{ctx.run_id}", f"Eve-{ctx.run_id}"
    admin = ctx.admin(PARIS)
    for user in (strict_name, name):
        ctx.created += [("user", ctx.admin(PARIS), user), ("user", ctx.admin(CORTE), user)]
    ctx.testbed.stop_service(CORTE, "proxy")
    try:
        strict = ctx.cli.run("user", "create", strict_name, cloud=admin, scope=USERS, check=False)
        assert not strict.ok and "Corte" in strict.stderr, strict.stderr
        eventual = ctx.cli.json(
            "--os-scope-mode", "eventual", "user", "create", name, cloud=admin, scope=USERS
        )
        handle = eventual["id"]
        found = replica_set(ctx, PARIS, handle)
        assert found is not None
        assert {m["site"]: m["state"] for m in found["members"]} == {
            PARIS: "present",
            CORTE: "pending",
        }
        # an update by name, still cut: OSC's lookups are answered by Paris (eventual reads)
        email = "eve@example.org"
        eventual_set = ("--os-scope-mode", "eventual", "user", "set", "--email", email, name)
        ctx.cli.run(*eventual_set, cloud=admin, scope=USERS)
        queued = pending_at(ctx, PARIS, handle)
        assert [(op["target"], op["method"]) for op in queued] == [
            (CORTE, "POST"),
            (CORTE, "PATCH"),
        ]
        # Paris's proxy restarts with the queue: nothing is lost
        ctx.testbed.stop_service(PARIS, "proxy")
        ctx.testbed.start_service(PARIS, "proxy")

        # (the replay loop keeps retrying meanwhile: compare the operations, not the counters)
        def ops(queue: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
            return [(op["seq"], op["key"], op["target"], op["method"], op["path"]) for op in queue]

        assert ops(pending_at(ctx, PARIS, handle)) == ops(queued)
    finally:
        ctx.testbed.start_service(CORTE, "proxy")
    # strict: all or nothing, Paris's user was deleted again, as the report said
    assert "undone: Paris: " in strict.stderr, strict.stderr
    assert shown_at(ctx, "user", strict_name, PARIS) is None
    # eventual: the replayer delivers the queued create once Corte answers again
    deadline = time.monotonic() + 90
    while pending_at(ctx, PARIS, handle) and time.monotonic() < deadline:
        time.sleep(2)
    assert pending_at(ctx, PARIS, handle) == []
    at_corte = [
        u for u in ctx.cli.json("user", "list", cloud=ctx.admin(CORTE)) if u["Name"] == name
    ]
    assert len(at_corte) == 1, at_corte
    corte_user = shown_at(ctx, "user", name, CORTE)
    assert corte_user is not None and corte_user["email"] == email  # replayed in order
    for site in (PARIS, CORTE):
        found = replica_set(ctx, site, handle)
        assert found is not None
        assert members(found) == {PARIS: handle, CORTE: at_corte[0]["ID"]}, (site, found)
    ctx.cli.run("user", "delete", name, cloud=admin, scope=USERS)
    for site in (PARIS, CORTE):
        assert shown_at(ctx, "user", name, site) is None, site
