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


def replica_set(ctx: Context, site: str, handle: str) -> dict[str, Any] | None:
    """The set as ``site``'s proxy records it, or None when it has none by that id."""
    proc = subprocess.run(
        [EDGESCOPE, "replicas", "show", handle, "--url", ctx.testbed.proxy_url(site), "--json"],
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
