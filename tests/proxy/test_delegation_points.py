"""Cross-site identity's named points (``Delegation``), each on its own, with no server.

The real-server tests (test_identity.py, test_trust.py) check the whole journey; these
check what each point does to one call: which header it sets, which token it swaps, and
that a call of another service passes every point untouched.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from multidict import CIMultiDict

import sitekeys
from edgescope.proxy.call import Call
from edgescope.proxy.config import parse_config
from edgescope.proxy.delegation import Delegation
from edgescope.proxy.memory import client_request
from edgescope.proxy.peerbook import PeerBook
from edgescope.proxy.protocol import TOKEN_SITE_HEADER
from edgescope.proxy.route import Plan, plan_route

CONFIG = parse_config(
    {
        "site": "Paris",
        "listen": "127.0.0.1:0",
        "private_key": sitekeys.private("Paris"),
        "services": [{"type": "identity", "prefix": "/identity", "backend": "http://h:1"}],
    }
)


class Tokens:
    """This site's service token, as ``ServiceToken.get`` gives it."""

    async def get(self) -> str:
        return "paris-service-token"


class NoLink:
    """A link to peers that must not be used: the point decides without a peer."""

    @property
    def peers(self) -> PeerBook:
        raise AssertionError("no peer should be asked")

    async def open_peer(self, *args: Any, **kwargs: Any) -> aiohttp.ClientResponse:
        raise AssertionError("no peer should be asked")


def call_of(service: str, method: str = "GET", path: str = "/v3/users", **headers: str) -> Call:
    request = client_request(method, f"/{service}{path}", headers)
    return Call(request=request, service=service, path=path, prefix="", request_id="req-1")


def test_a_client_s_identity_call_to_a_peer_names_this_site_as_issuer() -> None:
    delegation = Delegation(CONFIG, None)
    headers: CIMultiDict[str] = CIMultiDict()
    delegation.to_peer(call_of("identity"), headers)
    assert headers[TOKEN_SITE_HEADER] == "Paris"


def test_a_peer_s_identity_call_keeps_the_issuer_it_named() -> None:
    delegation = Delegation(CONFIG, None)
    call = call_of("identity", **{TOKEN_SITE_HEADER: "Lyon"})
    call.from_peer = "Corte"
    headers: CIMultiDict[str] = CIMultiDict()
    delegation.to_peer(call, headers)
    assert headers[TOKEN_SITE_HEADER] == "Lyon"


def test_another_service_passes_every_point_untouched() -> None:
    delegation = Delegation(CONFIG, Tokens())  # type: ignore[arg-type]
    call = call_of("image")
    call.from_peer, call.acting_token = "Corte", "acting"
    headers: CIMultiDict[str] = CIMultiDict({"X-Auth-Token": "user"})
    delegation.to_peer(call, headers)
    delegation.own_call_to_peer("image", headers)
    assert dict(headers) == {"X-Auth-Token": "user"}
    assert not delegation.strips_tokens("image") and delegation.strips_tokens("identity")


async def test_to_backend_swaps_in_the_acting_token_or_this_site_s_own() -> None:
    delegation = Delegation(CONFIG, Tokens())  # type: ignore[arg-type]
    acting = call_of("identity", "POST")
    acting.from_peer, acting.acting_token = "Corte", "acting-token"
    headers: CIMultiDict[str] = CIMultiDict({"X-Auth-Token": "user"})
    await delegation.to_backend(acting, acting.path, headers)
    assert headers["X-Auth-Token"] == "acting-token"

    validation = call_of("identity", "GET", "/v3/auth/tokens", **{"X-Subject-Token": "t"})
    validation.from_peer = "Corte"
    headers = CIMultiDict({"X-Auth-Token": "corte-service-token", "X-Subject-Token": "t"})
    await delegation.to_backend(validation, validation.path, headers)
    assert headers["X-Auth-Token"] == "paris-service-token"

    image = call_of("image")
    image.from_peer, image.acting_token = "Corte", "acting-token"
    headers = CIMultiDict({"X-Auth-Token": "user"})
    await delegation.to_backend(image, image.path, headers)
    assert headers["X-Auth-Token"] == "user"


async def test_admit_lets_a_client_s_call_and_a_non_identity_call_through() -> None:
    delegation = Delegation(CONFIG, Tokens())  # type: ignore[arg-type]
    for call in (call_of("identity"), call_of("image")):
        verdict = await delegation.admit(call, _local_plan(), NoLink())
        assert verdict.refusal is None and verdict.acting_token is None


def test_only_a_remote_get_validation_gets_the_local_catalog() -> None:
    delegation = Delegation(CONFIG, Tokens())  # type: ignore[arg-type]
    validation = call_of("identity", "GET", "/v3/auth/tokens", **{"X-Subject-Token": "t"})
    assert delegation.localises_catalog(validation, "Corte")
    assert not delegation.localises_catalog(validation, "Paris")
    assert not Delegation(CONFIG, None).localises_catalog(validation, "Corte")
    assert not delegation.localises_catalog(call_of("identity"), "Corte")


def _local_plan() -> Plan:
    return plan_route(None, "identity", "Paris", (), hops=0, max_hops=4, max_fanout=8)
