"""A large or chunked upload under ``|`` is kept only for a token its identity site accepts:
the proxy asks at most ``MAX_TOKEN_SITES`` of the scope's identity sites, not every one of a
long ``identity: A | B | ...`` (up to ~120 signed hops before a 401, security review
2026-12-07)."""

from __future__ import annotations

import io

from tests.proxy.conftest import SitesFactory

from edgescope.proxy.spool import MAX_TOKEN_SITES


async def test_the_token_check_asks_a_bounded_number_of_identity_sites(
    sites: SitesFactory, refused_url: str
) -> None:
    names = [f"I{i}" for i in range(MAX_TOKEN_SITES + 3)]
    paris, _ = await sites(
        "Paris",
        "Corte",
        identity=True,
        extra_peers={"Paris": {n: {"url": refused_url} for n in names}},
    )
    scope = f"{{image: Corte | Paris, identity: {' | '.join(names)}}}"
    status, _, body = await paris.request(
        "PUT",
        "/image/echo",
        data=io.BytesIO(b"x" * (2 * 1024 * 1024)),
        headers={"X-Scope": scope, "X-Auth-Token": "t"},
    )
    assert status == 401, body
    message = body["error"]["message"]
    asked = [n for n in names if f"{n}: " in message]
    assert asked == names[:MAX_TOKEN_SITES], message
    assert f"{len(names) - MAX_TOKEN_SITES} more not asked" in message
