"""TLS between proxies: peers talk on a peer listener over mutual TLS, verified against the
deployment's CA; clients and services keep the main listener."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import aiohttp

SitesFactory = Any


async def test_a_scoped_call_crosses_over_mutual_tls(sites: SitesFactory, tmp_path: Path) -> None:
    paris, corte = await sites("Paris", "Corte", tls_dir=tmp_path)
    assert corte.proxy.peer_url.startswith("https://")
    status, _headers, body = await paris.get("/image/echo", headers={"X-Scope": "{image: Corte}"})
    assert status == 200 and body["site"] == "Corte", body
    status, _, body = await paris.get("/image/items", headers={"X-Scope": "{image: Paris & Corte}"})
    assert status == 200 and len(body["items"]) == 4


async def test_the_peer_listener_refuses_plain_http_unknown_clients_and_non_peers(
    sites: SitesFactory, tmp_path: Path
) -> None:
    _paris, corte = await sites("Paris", "Corte", tls_dir=tmp_path)
    peer_url = corte.proxy.peer_url
    async with aiohttp.ClientSession() as session:
        # plain HTTP to a TLS listener: no answer
        plain = peer_url.replace("https://", "http://") + "/edgescope/health"
        try:
            async with session.get(plain, timeout=aiohttp.ClientTimeout(total=3)) as answer:
                assert answer.status >= 400
        except (TimeoutError, aiohttp.ClientError):
            pass
        # TLS with the CA but no client certificate: the handshake is refused
        context = ssl.create_default_context(cafile=str(tmp_path / "pki" / "ca.crt"))
        try:
            async with session.get(peer_url + "/edgescope/health", ssl=context) as answer:
                raise AssertionError(f"answered {answer.status} without a client certificate")
        except aiohttp.ClientError:
            pass
        # a client holding a site's certificate, but no hop marker: not a peer call
        context.load_cert_chain(
            str(tmp_path / "pki" / "Paris.crt"), str(tmp_path / "pki" / "Paris-tls.key")
        )
        async with session.get(peer_url + "/image/echo", ssl=context) as answer:
            assert answer.status == 403
            assert "peer proxies only" in (await answer.json())["error"]["message"]


async def test_peer_hops_on_the_main_listener_are_refused(
    sites: SitesFactory, tmp_path: Path
) -> None:
    """With a peer listener, the main listener (clients, local services) takes no hops."""
    import time

    import sitekeys
    from edgescope.proxy.keys import load_private
    from edgescope.proxy.protocol import sign_hop

    _paris, corte = await sites("Paris", "Corte", tls_dir=tmp_path)
    path = "/edgescope/svc/image/echo"
    hop = sign_hop(
        load_private(sitekeys.private("Paris")), "GET", path, "Paris", "Corte", 1, now=time.time()
    )
    status, _, body = await corte.get(path, headers=hop)
    assert status == 403 and "peer listener only" in body["error"]["message"]
    assert corte.seen == []
