"""Identity across sites: validation calls go to the scope's Keystone; service token swap
only for authenticated peers; the piggyback never reaches an identity backend."""

from __future__ import annotations

from typing import Any

from wiretap import Wiretap

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
    # Corte's backend only issued Corte's own service token (its catalog is the answer's)
    assert [r.get("issued_to") for r in corte.seen] == ["edgescope"]


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


def regions(body: dict[str, Any]) -> list[str]:
    return [e["region"] for entry in body["token"]["catalog"] for e in entry["endpoints"]]


async def test_remote_validation_answer_carries_the_callers_own_catalog(
    sites: SitesFactory,
) -> None:
    paris, corte = await sites("Paris", "Corte", identity=True)
    subject = attach_piggyback("paris-user", "{compute: Corte, identity: Paris}")
    headers = {"X-Auth-Token": "corte-nova-service-token", "X-Subject-Token": subject}
    status, _, body = await corte.get("/identity/v3/auth/tokens", headers=headers)
    assert status == 200 and body["site"] == "Paris"  # validated at Paris ...
    assert regions(body) == ["Corte"]  # ... but nova at Corte must find Corte's endpoints
    assert body["token"]["user"]["name"] == "paris-user"  # the rest as Paris returned it
    assert body["token"]["roles"] == [{"name": "member"}]
    # answered locally, the catalog is the local one, untouched
    status, _, body = await paris.get("/identity/v3/auth/tokens", headers=headers)
    assert status == 200 and regions(body) == ["Paris"]
    # ?nocatalog stays without a catalog; a refused token stays refused
    status, _, body = await corte.get("/identity/v3/auth/tokens?nocatalog", headers=headers)
    assert status == 200 and "catalog" not in body["token"]
    bad = {**headers, "X-Subject-Token": attach_piggyback("bad", "{identity: Paris}")}
    status, _, body = await corte.get("/identity/v3/auth/tokens", headers=bad)
    assert status == 404 and "token" not in body


async def test_peer_admin_acts_on_the_local_keystone_with_the_sites_service_token(
    sites: SitesFactory,
) -> None:
    paris, _corte = await sites(
        "Paris", "Corte", identity=True, delegate_roles={"Corte": ["admin"]}
    )  # Corte's operator acts for Paris's admins (off unless written)
    headers = {"X-Auth-Token": "paris-admin-token", "X-Scope": "{identity: Corte}"}
    status, _, body = await paris.request("POST", "/identity/v3/users", json={}, headers=headers)
    assert status == 200 and body["site"] == "Corte" and body["path"] == "/identity/v3/users"
    assert body["headers"]["X-Auth-Token"] == "service-token-of-Corte"
    assert "X-Edgescope-Token-Site" not in body["headers"]
    # the token was validated at Paris (its issuer), with Paris's own service token
    checks = paris.backend_hits("/identity/v3/auth/tokens?nocatalog")
    assert [c["headers"]["X-Subject-Token"] for c in checks] == ["paris-admin-token"]
    assert checks[0]["headers"]["X-Auth-Token"] == "service-token-of-Paris"


async def test_peer_non_admin_is_refused_with_a_403_naming_the_site(sites: SitesFactory) -> None:
    paris, corte = await sites("Paris", "Corte", identity=True, delegate_roles={"Corte": ["admin"]})
    headers = {"X-Auth-Token": "paris-member-token", "X-Scope": "{identity: Corte}"}
    status, _, body = await paris.request("POST", "/identity/v3/users", json={}, headers=headers)
    assert status == 403, body
    message = body["error"]["message"]
    assert "site Corte refuses POST /v3/users" in message and "role admin" in message
    assert "paris-member-token" in message  # the user's name, as Paris reported it
    assert not corte.backend_hits("/identity/v3/users")
    # a token Paris does not know: 401, and Corte's Keystone never sees the call
    headers["X-Auth-Token"] = "bad-token"
    status, _, body = await paris.request("POST", "/identity/v3/users", json={}, headers=headers)
    assert status == 401 and "Paris does not accept the token" in body["error"]["message"]
    assert not corte.backend_hits("/identity/v3/users")


async def test_empty_delegate_roles_never_delegate(sites: SitesFactory) -> None:
    for roles in ({"Corte": []}, None):  # written empty, or the default
        paris, corte = await sites("Paris", "Corte", identity=True, delegate_roles=roles)
        headers = {"X-Auth-Token": "paris-admin-token", "X-Scope": "{identity: Corte}"}
        status, _, body = await paris.request(
            "POST", "/identity/v3/users", json={}, headers=headers
        )
        assert status == 403 and "delegates no role" in body["error"]["message"]
        assert not corte.backend_hits("/identity/v3/users")
        assert not paris.backend_hits("/identity/v3/auth/tokens")  # not even asked


async def test_plain_clients_and_token_calls_are_never_delegated(sites: SitesFactory) -> None:
    paris, corte = await sites("Paris", "Corte", identity=True)
    # a client straight at Corte with a foreign token: no delegation, Keystone judges it
    headers = {"X-Auth-Token": "paris-admin-token", "X-Edgescope-Token-Site": "Paris"}
    status, _, body = await corte.request("POST", "/identity/v3/users", json={}, headers=headers)
    assert status == 200 and body["site"] == "Corte"
    assert body["headers"]["X-Auth-Token"] == "paris-admin-token"
    # issuing a token at Corte through Paris's proxy: passes as is
    status, _, body = await paris.request(
        "POST",
        "/identity/v3/auth/tokens",
        json={"auth": {"identity": {"password": {"user": {"name": "bob"}}}}},
        headers={"X-Scope": "{identity: Corte}"},
    )
    assert status == 201 and [r["issued_to"] for r in corte.seen if "issued_to" in r] == ["bob"]


async def test_a_401_or_403_branch_fails_an_and(sites: SitesFactory) -> None:
    paris, _corte = await sites("Paris", "Corte")
    for code in (401, 403):
        status, headers, body = await paris.get(
            f"/image/status/{code}", headers={"X-Scope": "{image: Corte & Paris}"}
        )
        assert status == code, body
        assert headers["X-Edgescope-Sites"] == f"Corte={code}, Paris={code}"
    # one site refusing, the other answering: the merge is a failure, not Paris's list
    status, headers, body = await paris.get(
        "/identity/v3/users",
        headers={"X-Auth-Token": "paris-member-token", "X-Scope": "{identity: Paris & Corte}"},
    )
    assert status == 403, body
    assert headers["X-Edgescope-Sites"] == "Paris=200, Corte=403"
    assert "1 of 2 sites failed" in body["error"]["message"]


async def test_service_credentials_never_leave_their_site(
    sites: SitesFactory, wiretap: Wiretap
) -> None:
    """What crosses from Corte to Paris (a wiretap between them) carries none of Corte's
    service credentials: not nova's ``X-Service-Token``, not the token Corte's glance
    validates with, not Corte's own service token when it delegates."""
    paris, corte = await sites(
        "Paris",
        "Corte",
        identity=True,
        peer_urls={"Corte": {"Paris": wiretap.url}},
        delegate_roles={"Corte": ["admin"]},
    )
    wiretap.target = paris.url
    nova_call = {  # nova at Corte calls glance at Paris with its own service token too
        "X-Auth-Token": attach_piggyback("corte-user-token", "{image: Paris}"),
        "X-Service-Token": "corte-nova-token",
    }
    status, _, body = await corte.get("/image/v2/images", headers=nova_call)
    assert status == 200 and body["site"] == "Paris"
    assert "X-Service-Token" not in body["headers"]
    validation = {  # Corte's glance validates a Paris user's token at Paris
        "X-Auth-Token": "corte-glance-token",
        "X-Subject-Token": attach_piggyback("paris-user-token", "{identity: Paris}"),
    }
    status, _, body = await corte.get("/identity/v3/auth/tokens", headers=validation)
    assert status == 200 and body["site"] == "Paris"
    assert body["headers"]["X-Auth-Token"] == "service-token-of-Paris"  # Paris's own
    delegated = {"X-Auth-Token": "paris-admin-token", "X-Scope": "{keystone: Corte}"}
    status, _, body = await paris.request("POST", "/identity/v3/users", json={}, headers=delegated)
    assert status == 200, body  # Corte validated the Paris token at Paris, then acted
    assert len(wiretap.heard) == 3
    crossing = " ".join(f"{k}: {v}" for h in wiretap.heard for k, v in h.items())
    for secret in ("corte-nova-token", "corte-glance-token", "service-token-of-Corte"):
        assert secret not in crossing
    # a call served at its own site keeps the service token as it came
    status, _, body = await paris.get("/image/v2/images", headers={"X-Service-Token": "t"})
    assert status == 200 and body["site"] == "Paris" and body["headers"]["X-Service-Token"] == "t"
