"""Identity across sites, at the HTTP level: forged peer headers, tokens of unknown users."""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request

import pytest

from edgescope.openstack.scenarios import CORTE, PARIS, Context
from edgescope.openstack.session import scope_headers

pytestmark = [pytest.mark.testbed, pytest.mark.slow]


def _get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        body = err.read()
        return err.code, (json.loads(body) if body.startswith(b"{") else {})


def _token(ctx: Context, cloud: str, *extra: str) -> str:
    return ctx.cli.value(*extra, "token", "issue", "-c", "id", cloud=cloud)


def _forged_hop(peer: str) -> dict[str, str]:
    return {
        "X-Edgescope-Hop": "1",
        "X-Edgescope-Peer": peer,
        "X-Edgescope-Timestamp": str(int(time.time())),
        "X-Edgescope-Signature": secrets.token_hex(32),
    }


def test_forged_peer_header_from_a_plain_client_is_rejected(ctx: Context) -> None:
    image = ctx.testbed.proxy_endpoint(PARIS, "image")
    identity = ctx.testbed.proxy_endpoint(PARIS, "identity")
    token = _token(ctx, ctx.user(PARIS))
    # a real user token, plus a hop marker claiming to come from Corte
    status, body = _get(f"{image}/v2/images", {"X-Auth-Token": token, **_forged_hop(CORTE)})
    assert status == 403, body
    assert "images" not in body and "error" in body
    # a validation call with a forged marker must not get Paris's service credentials
    status, body = _get(
        f"{identity}/v3/auth/tokens",
        {"X-Auth-Token": "not-a-token", "X-Subject-Token": token, **_forged_hop(CORTE)},
    )
    assert status == 403, body
    # the same request without the forged marker works: the token itself is fine
    status, body = _get(f"{image}/v2/images", {"X-Auth-Token": token})
    assert status == 200 and "images" in body


def test_token_of_a_user_unknown_at_the_identity_site_is_refused(ctx: Context) -> None:
    name, password = ctx.demo_member(PARIS, "tok-paris-only")
    token = _token(ctx, ctx.user(PARIS), "--os-username", name, f"--os-password={password}")
    images = f"{ctx.testbed.proxy_endpoint(PARIS, 'image')}/v2/images"

    def as_plugin(scope: str) -> dict[str, str]:
        # what `openstack --os-scope` sends: X-Scope and the scope piggybacked on the token
        headers = scope_headers({"X-Auth-Token": token}, scope)
        assert headers is not None
        return headers

    # identity at Paris (the user's own site): Corte's glance accepts the token
    status, body = _get(images, as_plugin("{image: Corte, identity: Paris}"))
    assert status == 200 and "images" in body, body
    # identity at Corte, where the user does not exist: refused
    status, body = _get(images, as_plugin("{image: Corte, identity: Corte}"))
    assert status == 401, body
    # and Paris's own glance with the token validated at Corte: refused too
    status, body = _get(images, as_plugin("{identity: Corte}"))
    assert status == 401, body
