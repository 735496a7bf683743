"""Identity across sites with the real CLI: a remote nova gets its own site's catalog, and a
Paris admin acts on Corte's Keystone (delegate_roles) while a Paris non-admin is refused."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from edgescope.openstack.scenarios import CORTE, MARSEILLE, PARIS, Context

pytestmark = [pytest.mark.testbed, pytest.mark.slow]
BOOT = ("--flavor", "m1.tiny", "--nic", "none", "--wait")


def _post(
    url: str, headers: dict[str, str], body: dict[str, object]
) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, (json.loads(raw) if raw.startswith(b"{") else {})


def test_paris_user_boots_and_lists_at_corte_with_a_paris_token(ctx: Context) -> None:
    """Nova at Corte validates the Paris token at Paris, yet finds Corte's glance (catalog)."""
    name = ctx.name("deleg-boot")
    scope = "{nova: Corte, glance: Corte}"
    server = ctx.cli.json(
        "server", "create", name, *BOOT, "--image", ctx.debian_id(CORTE),
        cloud=ctx.user(PARIS), scope=scope, timeout=300,
    )  # fmt: skip
    try:
        assert server["status"] == "ACTIVE", server
        listed = ctx.cli.json("server", "list", cloud=ctx.user(PARIS), scope="{nova: Corte}")
        assert name in [s["Name"] for s in listed]
        # the server really is Corte's, with Corte's image
        shown = ctx.cli.json("server", "show", server["id"], cloud=ctx.admin(CORTE))
        assert ctx.debian_id(CORTE) in json.dumps(shown["image"])
    finally:
        ctx.cli.run(
            "server", "delete", "--wait", server["id"], cloud=ctx.user(PARIS), scope=scope,
            check=False,
        )  # fmt: skip


def test_paris_admin_creates_a_user_at_paris_and_corte(ctx: Context) -> None:
    name = ctx.name("deleg-alice")
    created = ctx.cli.json(
        "user", "create", name, cloud=ctx.admin(PARIS), scope="{keystone: Paris & Corte}"
    )
    ctx.created += [("user", ctx.admin(PARIS), name), ("user", ctx.admin(CORTE), name)]
    assert created["name"] == name
    paris = ctx.cli.json("user", "show", name, cloud=ctx.admin(PARIS))
    corte = ctx.cli.json("user", "show", name, cloud=ctx.admin(CORTE))
    assert paris["name"] == corte["name"] == name
    assert paris["id"] != corte["id"]  # two independent Keystones, each with its own Alice
    missing = ctx.cli.run("user", "show", name, cloud=ctx.admin(MARSEILLE), check=False)
    assert not missing.ok


def test_paris_non_admin_is_refused_at_corte_with_403(ctx: Context) -> None:
    name = ctx.name("deleg-bob")
    token = ctx.cli.value("token", "issue", "-c", "id", cloud=ctx.user(PARIS))
    status, body = _post(
        f"{ctx.testbed.proxy_endpoint(PARIS, 'identity')}/v3/users",
        {"X-Auth-Token": token, "X-Scope": "{identity: Corte}"},
        {"user": {"name": name, "domain_id": "default"}},
    )
    assert status == 403, body
    message = str(body["error"]["message"])  # type: ignore[index]
    assert "site Corte refuses POST /v3/users" in message and "role admin" in message
    # the same through the CLI with '&': Paris's Keystone and Corte's proxy both say 403
    result = ctx.cli.run(
        "user", "create", name, cloud=ctx.user(PARIS), scope="{keystone: Paris & Corte}",
        check=False,
    )  # fmt: skip
    assert not result.ok and "403" in result.stderr and "site Corte refuses" in result.stderr
    for site in (PARIS, CORTE):
        assert not ctx.cli.run("user", "show", name, cloud=ctx.admin(site), check=False).ok
