"""around()/nearest() through real proxies on loopback: the entry proxy resolves them from its
own measurements (probes: each peer's RTT and the services its health answer names) before
routing. The RTTs of a WAN are injected with ``Prober.record`` where the test needs them (the
fixtures' probes are off); the last test lets the real probes measure."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest
from yarl import URL

from edgescope.proxy.forward import Upstream, get_json_from
from edgescope.proxy.probes import handshake_rtt_ms
from edgescope.proxy.protocol import SITES_HEADER

SitesFactory = Any
ALL = frozenset({"image", "compute", "identity"})
AROUND = {"X-Scope": "{image: around(Paris, 15ms)}"}


async def test_around_and_nearest_route_by_the_entry_proxys_rtts(sites: SitesFactory) -> None:
    paris, corte, marseille = await sites("Paris", "Corte", "Marseille")
    paris.proxy.prober.record("Marseille", 10.0, ALL)
    paris.proxy.prober.record("Corte", 20.0, ALL)
    status, headers, _ = await paris.get("/image/items", headers=AROUND)
    assert status == 200 and headers[SITES_HEADER] == "Paris=200, Marseille=200"
    assert marseille.seen[0]["headers"]["X-Scope"] == "{image: Marseille, identity: Paris}"
    assert not corte.seen

    paris.proxy.prober.record("Corte", 5.0, ALL)  # a delay changed: so does the answer
    status, headers, _ = await paris.get("/image/items", headers=AROUND)
    assert status == 200 and headers[SITES_HEADER] == "Paris=200, Corte=200, Marseille=200"

    status, headers, body = await paris.get(
        "/image/echo", headers={"X-Scope": "{image: nearest(Marseille, Corte)}"}
    )
    assert status == 200 and body["site"] == "Corte"


async def test_only_sites_that_run_the_service_measured_and_closed_are_inside(
    sites: SitesFactory,
) -> None:
    paris, corte, marseille, nice = await sites(
        "Paris", "Corte", "Marseille", "Nice", breaker={"failure_threshold": 1}
    )
    prober = paris.proxy.prober
    prober.record("Marseille", 10.0, frozenset({"compute", "identity"}))  # no image service
    prober.record("Corte", 5.0, ALL)
    # Nice: never measured (RTT and services unknown): never inside
    status, headers, _ = await paris.get("/image/items", headers=AROUND)
    assert status == 200 and headers[SITES_HEADER] == "Paris=200, Corte=200"
    assert not marseille.seen and not nice.seen
    status, headers, _ = await paris.get(
        "/compute/items", headers={"X-Scope": "{compute: around(Paris, 15ms)}"}
    )
    assert headers[SITES_HEADER] == "Paris=200, Corte=200, Marseille=200"
    # nearest() drops a written site known not to run the service
    status, _, body = await paris.get(
        "/image/echo", headers={"X-Scope": "{image: nearest(Marseille, Nice)}"}
    )
    assert status == 200 and body["site"] == "Nice"
    assert [hit["path"] for hit in marseille.seen] == ["/compute/items"]

    breaker = paris.proxy.peers.breaker("Corte")
    breaker.record_failure(now=time.monotonic(), reason="cut")
    assert breaker.state == "open"
    seen_before = len(corte.seen)
    status, headers, _ = await paris.get("/image/items", headers=AROUND)
    assert status == 200 and SITES_HEADER not in headers  # Paris alone: served locally
    assert len(corte.seen) == seen_before  # open breaker: never inside


async def test_around_of_no_site_running_the_service_is_a_400(sites: SitesFactory) -> None:
    paris, corte = await sites("Paris", "Corte")
    paris.proxy.prober.record("Corte", 1.0, frozenset({"compute"}))
    status, _, body = await paris.get(
        "/compute/items", headers={"X-Scope": "{image: around(Corte, 15ms), compute: Paris}"}
    )
    assert status == 400 and "no RTT measured from Corte" in body["error"]["message"]
    status, _, body = await paris.get(
        "/compute/items", headers={"X-Scope": "{image: nearest(Corte, Paris)}"}
    )
    assert status == 200  # Paris runs image: nearest(Corte, Paris) is Paris
    assert not corte.seen


async def test_around_another_site_is_a_400_naming_why(sites: SitesFactory) -> None:
    paris, corte = await sites("Paris", "Corte")
    status, _, body = await paris.get(
        "/image/items", headers={"X-Scope": "{image: around(Corte, 15ms)}"}
    )
    assert status == 400
    assert "no RTT measured from Corte is known at Paris" in body["error"]["message"]
    assert not corte.seen and not paris.seen


async def test_real_probes_measure_the_candidates_of_an_around_and_their_services(
    sites: SitesFactory,
) -> None:
    paris, corte = await sites("Paris", "Corte")
    prober, wide = paris.proxy.prober, {"X-Scope": "{image: around(Paris, 1000ms)}"}
    status, headers, _ = await paris.get("/image/items", headers=wide)
    assert status == 200 and SITES_HEADER not in headers  # Paris alone: Corte not measured yet
    assert not corte.seen
    assert await prober.round() == ["Corte"]  # the around put Corte in use: it is probed
    assert prober.services["Corte"] == ALL
    rtt = prober.path_rtt_ms()["Corte"]
    status, headers, _ = await paris.get("/image/items", headers=wide)
    # a loaded host may stretch loopback's RTT: the answer follows what was measured
    inside = "Paris=200, Corte=200" if rtt <= 1000 else None
    assert status == 200 and headers.get(SITES_HEADER) == inside, rtt
    _, _, doc = await paris.get("/edgescope/status")
    (row,) = doc["peers"]
    assert row["services"] == sorted(ALL) and row["path_rtt_ms"] == rtt
    _, _, health = await corte.get("/edgescope/health")
    assert health == {"site": "Corte", "status": "ok", "services": ["image", "compute", "identity"]}


async def test_a_stalled_proxy_does_not_stretch_the_rtt_around_resolves_with(
    sites: SitesFactory,
) -> None:
    """Issue 25: on a loaded host the probe's HTTP round trip holds the time the proxies waited
    for a CPU; the RTT of ``around`` is the path's (the kernel's handshake RTT), not that."""
    paris, _ = await sites("Paris", "Corte")
    prober = paris.proxy.prober
    asyncio.get_running_loop().call_soon(time.sleep, 0.3)  # Paris's loop stalls mid-probe
    assert await prober.probe("Corte")
    assert prober.rtt_ms["Corte"] >= 300  # the probe's own round trip holds the stall
    path = prober.path_rtt_ms()["Corte"]
    assert path < 100, path  # loopback: the path is not the stall
    status, headers, _ = await paris.get(
        "/image/items", headers={"X-Scope": "{image: around(Paris, 100ms)}"}
    )
    assert status == 200 and headers[SITES_HEADER] == "Paris=200, Corte=200"


async def test_the_handshake_rtt_is_the_kernels_and_none_when_nobody_answers() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        rtt = await handshake_rtt_ms(("127.0.0.1", port), timeout=2)
    assert rtt is not None and 0 < rtt < 100
    # nobody listens there any more: refused, no sample (the probe's round trip is used)
    assert await handshake_rtt_ms(("127.0.0.1", port), timeout=2) is None


async def test_the_handshake_goes_where_the_probe_went_never_to_a_new_lookup(
    sites: SitesFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer whose URL is a name in its own DNS zone could give a second lookup an address
    near the measurer (any listener answers a SYN) and so enter every around(): the handshake
    goes to the address the probe's pool connects to, looked up by nobody again."""
    paris, _ = await sites("Paris", "Corte")
    loop = asyncio.get_running_loop()
    real_lookup, real_connect = loop.getaddrinfo, loop.sock_connect
    connected: list[str] = []

    async def lying(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "127.0.0.1":  # a new lookup of the peer's host: an address near us
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", port))]
        return await real_lookup(host, port, *args, **kwargs)

    async def recording(sock: socket.socket, address: Any) -> None:
        connected.append(address[0])
        await real_connect(sock, address)

    monkeypatch.setattr(loop, "getaddrinfo", lying)
    monkeypatch.setattr(loop, "sock_connect", recording)
    assert await paris.proxy.prober.probe("Corte")
    assert "127.0.0.2" not in connected and "127.0.0.1" in connected
    assert paris.proxy.prober.path_rtt_ms()["Corte"] < 100


async def test_a_peer_named_by_host_name_is_measured_at_the_address_its_probe_went_to() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, Upstream() as upstream:
        url = URL(f"http://localhost:{port}/health")
        assert await get_json_from(upstream, "Corte", url, timeout=2) == ({}, ("127.0.0.1", port))
        assert await handshake_rtt_ms(("127.0.0.1", port), timeout=2) is not None
