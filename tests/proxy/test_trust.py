"""The trust policy (proxy/trust.py): pure facts in, one decision out, for every peer request."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from edgescope.cli.extensions import build_extensions
from edgescope.proxy import keys
from edgescope.proxy.config import parse_config
from edgescope.proxy.protocol import sign_hop
from edgescope.proxy.server import SiteProxy
from edgescope.proxy.trust import (
    PeerTrust,
    TrustPolicy,
    capability_of,
    decide,
    delegable_roles,
)

REPLICAS = "/edgescope/replicas/sets"
SYNC = "/edgescope/directory/sync"
ROUTE = "/edgescope/svc/identity/v3/users"


@pytest.mark.parametrize(
    ("path", "needs"),
    [
        ("/edgescope/svc/image/v2/images?limit=1", "route"),
        ("/image/v2/images", "route"),
        ("/edgescope/replicas", "replicas"),
        ("/edgescope/replicas?x=1", "replicas"),
        (REPLICAS, "replicas"),
        ("/edgescope/replicasX", "route"),  # a prefix is a whole path segment
        (SYNC, "directory"),
        ("/edgescope/directory", "directory"),
        ("/edgescope/directoryX/sync", "route"),
    ],
)
def test_each_request_needs_one_capability(path: str, needs: str) -> None:
    assert capability_of(path) == needs


def test_a_replicated_write_needs_replicas_whatever_its_path() -> None:
    assert capability_of("/edgescope/svc/image/v2/images", replicated=True) == "replicas"
    decision = decide(TrustPolicy(), "Lyon", configured=False, path=ROUTE, replicated=True)
    assert not decision.allowed and decision.needs == "replicas"
    assert decide(TrustPolicy(), "Corte", configured=True, path=ROUTE, replicated=True).allowed


def test_defaults_trust_configured_peers_and_let_learned_sites_route_only() -> None:
    policy = TrustPolicy()
    for path in (ROUTE, REPLICAS, SYNC):
        assert decide(policy, "Corte", configured=True, path=path).allowed
    assert decide(policy, "Lyon", configured=False, path=ROUTE).allowed
    for path in (REPLICAS, SYNC):
        decision = decide(policy, "Lyon", configured=False, path=path)
        assert not decision.allowed
        assert "Lyon (a site learned from the directory)" in decision.reason
        assert "[trust.sites.Lyon] may" in decision.reason


def test_delegation_is_off_by_default_for_everyone() -> None:
    policy = TrustPolicy()
    assert delegable_roles(policy, "Corte", configured=True) == ()
    assert delegable_roles(policy, "Evil", configured=False) == ()


def test_a_site_entry_overrides_the_default_of_its_kind() -> None:
    policy = TrustPolicy(
        learned=frozenset({"route", "directory"}),
        sites={
            "Corte": PeerTrust(frozenset({"route"}), ("admin",)),
            "Lyon": PeerTrust(None, ("edgescope-delegate",)),  # may: the default of its kind
        },
    )
    assert not decide(policy, "Corte", configured=True, path=REPLICAS).allowed
    assert decide(policy, "Corte", configured=True, path=ROUTE).allowed
    assert delegable_roles(policy, "Corte", configured=True) == ("admin",)
    assert decide(policy, "Lyon", configured=False, path=SYNC).allowed
    assert not decide(policy, "Lyon", configured=False, path=REPLICAS).allowed
    assert delegable_roles(policy, "Lyon", configured=False) == ("edgescope-delegate",)
    assert delegable_roles(policy, "Paris", configured=True) == ()  # no entry: none


def test_a_peer_trusted_with_nothing_may_do_nothing() -> None:
    policy = TrustPolicy(sites={"Corte": PeerTrust(frozenset())})
    for path in (ROUTE, REPLICAS, SYNC):
        decision = decide(policy, "Corte", configured=True, path=path)
        assert not decision.allowed and "grants it nothing" in decision.reason


@pytest.mark.parametrize(
    ("path", "needs"),
    [
        ("/edgescope/%72eplicas/sets", "replicas"),
        ("/edgescope/%2572eplicas/sets", "replicas"),
        ("/edgescope/%64irectory/sync", "directory"),
        ("/edgescope/svc/../replicas/sets", "replicas"),
        ("/edgescope/svc/%2e%2e/directory/sync", "directory"),
        ("/edgescope//replicas/sets", "replicas"),
        ("/edgescope/svc/image/v2/images%3Fx", "route"),
    ],
)
def test_the_capability_is_chosen_on_the_path_the_router_reads(path: str, needs: str) -> None:
    assert capability_of(path) == needs


@pytest.mark.parametrize("path", ["/edgescope/replicas/sets", "/edgescope/%72eplicas/sets"])
async def test_a_route_only_peer_cannot_reach_a_reserved_path_by_encoding_it(
    tmp_path: Path, path: str
) -> None:
    """A real Corte proxy trusting Paris to route only: Paris's correctly signed push, whether
    its path is percent-encoded or not, is refused by the trust check (403), never handled."""
    paris, corte = keys.generate(), keys.generate()
    cfg = parse_config(
        {
            "site": "Corte",
            "listen": "127.0.0.1:0",
            "private_key": "ed25519:" + base64.b64encode(corte.private_bytes_raw()).decode(),
            "services": [{"type": "image", "prefix": "/image", "backend": "http://127.0.0.1:9"}],
            "peers": [
                {
                    "name": "Paris",
                    "url": "http://127.0.0.1:9",
                    "public_key": keys.public_text(paris.public_key()),
                }
            ],
            "trust": {"sites": {"Paris": {"may": ["route"]}}},
        }
    )
    proxy = SiteProxy(cfg, extensions=build_extensions(cfg, tmp_path))
    await proxy.start()
    try:
        body = json.dumps({"garbage": 1}).encode()
        headers = {"Content-Type": "application/json"}
        headers.update(
            sign_hop(
                paris,
                "POST",
                path,
                "Paris",
                "Corte",
                1,
                now=time.time(),
                headers=headers,
                body=body,
            )
        )
        async with (
            aiohttp.ClientSession() as session,
            session.post(URL(proxy.url + path, encoded=True), data=body, headers=headers) as answer,
        ):
            text = await answer.text()
        assert answer.status == 403, text
        assert "may not use" in text
    finally:
        await proxy.stop()
