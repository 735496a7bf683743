"""Identity across sites: validation calls go to the scope's Keystone; service token swap
only for authenticated peers; the piggyback never reaches an identity backend."""

from __future__ import annotations

from typing import Any

from edgescope.proxy.carriers import attach_piggyback

SitesFactory = Any


async def test_validation_from_a_peer_uses_the_identity_sites_own_service_token(
    sites: SitesFactory,
) -> None:
    paris, corte = await sites("Paris", "Corte", identity=True)
    user_token = attach_piggyback("paris-user-token", "{image: Corte, identity: Paris}")
    # glance at Corte validates the user's token through Corte's proxy (keystonemiddleware).
    headers = {"X-Auth-Token": "corte-glance-service-token", "X-Subject-Token": user_token}
    for _ in range(2):
        status, _, body = await corte.get("/identity/v3/auth/tokens", headers=headers)
        assert status == 200 and body["site"] == "Paris"
        assert body["headers"]["X-Auth-Token"] == "service-token-of-Paris"
        assert body["headers"]["X-Subject-Token"] == "paris-user-token"
    issued = [r for r in paris.seen if "issued_to" in r]
    assert [r["issued_to"] for r in issued] == ["edgescope"]  # cached after the first
    assert not corte.seen


async def test_plain_client_token_passes_through_with_piggyback_stripped(
    sites: SitesFactory,
) -> None:
    paris, _ = await sites("Paris", "Corte", identity=True)
    headers = {
        "X-Auth-Token": attach_piggyback("my-token", "{image: Corte}"),
        "X-Subject-Token": attach_piggyback("other", "{image: Corte}"),
    }
    status, _, body = await paris.get("/identity/v3/auth/tokens", headers=headers)
    assert status == 200 and body["site"] == "Paris"
    assert body["headers"]["X-Auth-Token"] == "my-token"
    assert body["headers"]["X-Subject-Token"] == "other"
    assert not [r for r in paris.seen if "issued_to" in r]


async def test_non_validation_identity_calls_from_peers_keep_their_token(
    sites: SitesFactory,
) -> None:
    _paris, corte = await sites("Paris", "Corte", identity=True)
    status, _, body = await corte.request(
        "POST",
        "/identity/v3/users",
        json={},
        headers={"X-Auth-Token": "admin-token", "X-Scope": "{identity: Paris}"},
    )
    assert status == 200 and body["site"] == "Paris"
    assert body["headers"]["X-Auth-Token"] == "admin-token"
