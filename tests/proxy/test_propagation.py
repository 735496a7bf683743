"""A client that sends its scope only as ``X-Scope`` (or baggage) still reaches the right sites.

The proxy piggybacks the branch's scope on the ``X-Auth-Token`` it forwards, so a backend
that hands the token on (to validate it, or to call a neighbour) through its own site's
proxy carries the scope along without knowing it. Real loopback proxies and generic
backends (``conftest.py``: ``/relay/`` and ``/validate`` call the site's own proxy).
"""

from __future__ import annotations

from typing import Any

import pytest

from edgescope.proxy.carriers import attach_piggyback, split_piggyback

SitesFactory = Any


def validations(site: Any) -> list[dict[str, Any]]:
    """The token validations (GET /v3/auth/tokens) that reached ``site``'s identity backend."""
    return [hit for hit in site.seen if hit.get("service") == "identity"]


@pytest.mark.parametrize(
    "carrier",
    [{"X-Scope": "{glance: Corte}"}, {"baggage": "scope=%7Bglance%3A%20Corte%7D"}],
    ids=["x-scope", "baggage"],
)
async def test_backend_gets_the_token_with_the_branch_scope(
    sites: SitesFactory, carrier: dict[str, str]
) -> None:
    paris, _corte = await sites("Paris", "Corte")
    status, _, body = await paris.get("/image/echo", headers={"X-Auth-Token": "tok", **carrier})
    assert status == 200 and body["site"] == "Corte"
    token = body["headers"]["X-Auth-Token"]
    assert split_piggyback(token) == ("tok", "{image: Corte, identity: Paris}")
    assert token.count("~scope~") == 1


async def test_fan_out_branch_tokens_name_their_own_site(sites: SitesFactory) -> None:
    paris, corte = await sites("Paris", "Corte")
    status, _, _ = await paris.get(
        "/image/echo", headers={"X-Auth-Token": "tok", "X-Scope": "{image: Paris & Corte}"}
    )
    assert status == 200
    for site in (paris, corte):
        (hit,) = site.backend_hits("/echo")
        _, scope = split_piggyback(hit["headers"]["X-Auth-Token"])
        assert scope == f"{{image: {site.name}, identity: Paris}}"


async def test_remote_service_validates_the_token_at_the_users_identity_site(
    sites: SitesFactory,
) -> None:
    paris, corte = await sites("Paris", "Corte", identity=True)
    status, _, body = await paris.get(
        "/image/validate", headers={"X-Auth-Token": "paris-user", "X-Scope": "{glance: Corte}"}
    )
    assert status == 200 and body["status"] == 200
    assert body["answer"]["site"] == "Paris"  # Paris's Keystone, not Corte's
    (check,) = validations(paris)
    assert check["headers"]["X-Subject-Token"] == "paris-user"  # piggyback stripped
    assert check["headers"]["X-Auth-Token"] == "service-token-of-Paris"
    assert not validations(corte)
    assert [h["site"] for h in corte.backend_hits("/validate")] == ["Corte"]


@pytest.mark.parametrize("identity_site", ["Paris", "Corte"])
async def test_identity_backend_never_sees_a_piggyback(
    sites: SitesFactory, identity_site: str
) -> None:
    paris, corte = await sites("Paris", "Corte")
    await paris.get(
        "/identity/v3/auth/tokens",
        headers={
            "X-Auth-Token": attach_piggyback("tok", "{image: Corte}"),
            "X-Subject-Token": attach_piggyback("sub", "{image: Corte}"),
            "X-Scope": f"{{keystone: {identity_site}}}",
        },
    )
    (check,) = validations(paris if identity_site == "Paris" else corte)
    assert check["headers"]["X-Subject-Token"] == "sub"
    # the validator's own token stays at its site: a peer's proxy validates with its own
    expected = "tok" if identity_site == "Paris" else None
    assert check["headers"].get("X-Auth-Token") == expected


@pytest.mark.parametrize(
    ("scope", "compute_site", "image_site"),
    [
        ("{nova: Paris, glance: Corte}", "Paris", "Corte"),
        ("{nova: Corte, glance: Paris}", "Corte", "Paris"),
    ],
)
async def test_service_to_service_call_with_just_the_token_follows_the_scope(
    sites: SitesFactory, scope: str, compute_site: str, image_site: str
) -> None:
    paris, corte = await sites("Paris", "Corte")
    status, _, body = await paris.get(
        "/compute/relay/image/echo", headers={"X-Auth-Token": "tok", "X-Scope": scope}
    )
    assert status == 200 and body["status"] == 200
    by_name = {"Paris": paris, "Corte": corte}
    assert [h["site"] for h in by_name[compute_site].backend_hits("/relay/")] == [compute_site]
    echo = body["answer"]
    assert echo["site"] == image_site and echo["service"] == "image"
    _, downstream = split_piggyback(echo["headers"]["X-Auth-Token"])
    assert downstream is not None and f"image: {image_site}" in downstream
    assert "identity: Paris" in downstream
