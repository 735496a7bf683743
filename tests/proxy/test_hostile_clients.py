"""Hostile clients cannot disturb a peer or the proxy (issue 11): each test drives an attack,
then checks that legitimate calls keep succeeding.

Aborted and slow uploads are the client's failure, never the peer's (the breaker stays
closed); see also the merge, spool, label, head and path tests below.
"""

from __future__ import annotations

import asyncio
import io
import socket
from typing import Any

import psutil

SitesFactory = Any
CORTE = {"X-Scope": "{image: Corte}"}


def host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


async def aborted_upload(url: str, scope: str, sent: int = 64 * 1024) -> None:
    """Start a 10 MB upload, send ``sent`` bytes, then drop the connection (RST)."""
    _reader, writer = await asyncio.open_connection(*host_port(url))
    head = (
        f"PUT /image/echo HTTP/1.1\r\nHost: x\r\nX-Scope: {scope}\r\n"
        f"Content-Length: {10 * 1024 * 1024}\r\n\r\n"
    ).encode()
    writer.write(head + b"x" * sent)
    await writer.drain()
    await asyncio.sleep(0.1)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.close()
    await writer.wait_closed()


async def breaker_of(site: Any, peer: str) -> str:
    """The breaker's state, "closed" too when the peer was never called ("unused")."""
    _, _, status = await site.get("/edgescope/status")
    state = str(next(p["breaker"] for p in status["peers"] if p["name"] == peer))
    return "closed" if state == "unused" else state


async def test_aborted_uploads_do_not_open_the_peers_breaker(sites: SitesFactory) -> None:
    paris, _corte = await sites("Paris", "Corte")
    for _ in range(6):  # twice the breaker's failure threshold
        await aborted_upload(paris.url, "{image: Corte}")
        await asyncio.sleep(0.2)
    assert await breaker_of(paris, "Corte") == "closed"
    status, _, body = await paris.get("/image/echo", headers=CORTE)
    assert status == 200 and body["site"] == "Corte"


async def test_a_slow_upload_is_the_clients_timeout_not_the_peers(sites: SitesFactory) -> None:
    paris, _ = await sites("Paris", "Corte", read_timeout=0.5, limits={"client_idle_timeout": 0.3})
    for _ in range(4):
        reader, writer = await asyncio.open_connection(*host_port(paris.url))
        writer.write(
            b"PUT /image/echo HTTP/1.1\r\nHost: x\r\nX-Scope: {image: Corte}\r\n"
            b"Content-Length: 100\r\nConnection: close\r\n\r\nx"
        )
        await writer.drain()
        for _ in range(3):  # one byte every 0.4 s: slower than Corte's read timeout
            await asyncio.sleep(0.4)
            writer.write(b"x")
            await writer.drain()
        answer = await asyncio.wait_for(reader.read(4096), timeout=5)
        writer.close()
        await writer.wait_closed()
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert await breaker_of(paris, "Corte") == "closed"
    status, _, body = await paris.get("/image/echo", headers=CORTE)
    assert status == 200 and body["site"] == "Corte"


async def test_an_aborted_upload_under_or_is_never_resent_truncated(sites: SitesFactory) -> None:
    paris, corte = await sites("Paris", "Corte")
    await aborted_upload(paris.url, "{image: Paris | Corte}")
    await asyncio.sleep(0.3)
    complete = [h for h in paris.seen + corte.seen if h.get("size") == 10 * 1024 * 1024]
    truncated = [h for h in paris.seen + corte.seen if "size" in h and h["size"] < 10 * 1024 * 1024]
    assert complete == [] and [h["site"] for h in truncated] in ([], ["Paris"])
    assert await breaker_of(paris, "Corte") == "closed"


async def test_paths_that_leave_their_prefix_are_refused(sites: SitesFactory) -> None:
    paris, _ = await sites("Paris", "Corte")
    for path in ("/image/v2/../../compute/x", "/image/%2e%2e/identity", "/image/a/%252E%252E/b"):
        reader, writer = await asyncio.open_connection(*host_port(paris.url))
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        answer = await asyncio.wait_for(reader.read(), timeout=5)
        writer.close()
        await writer.wait_closed()
        assert answer.startswith(b"HTTP/1.1 400") and b"'..'" in answer, (path, answer[:300])
    assert paris.seen == []
    status, _, _ = await paris.get("/image/v2/images/a.b..c", headers=CORTE)
    assert status == 200  # dots inside a segment are fine


async def test_metrics_labels_come_from_the_configured_services_only(sites: SitesFactory) -> None:
    paris, _ = await sites("Paris", "Corte")
    _, _, before = await paris.get("/metrics")
    for i in range(300):  # a flood of distinct made-up services, refused
        await paris.get(f"/edgescope/svc/made-up-{i}/x")
    _, _, after = await paris.get("/metrics")
    assert b"made-up" not in after
    assert len(after) < len(before) + 2000


async def test_a_scope_naming_too_many_sites_is_refused_before_parsing(
    sites: SitesFactory,
) -> None:
    paris, _ = await sites("Paris", "Corte", limits={"max_scope_sites": 16})
    wide = "{image: " + " & ".join(f"S{i}" for i in range(40)) + "}"
    status, _, body = await paris.get("/image/echo", headers={"X-Scope": wide})
    assert status == 400 and "max_scope_sites" in body["error"]["message"]


async def test_huge_answers_under_and_are_refused_with_bounded_memory(
    sites: SitesFactory,
) -> None:
    """Two sites answer 3 M items each (6 MB): counted before parsing, refused (507)."""
    process = psutil.Process()
    paris, _ = await sites("Paris", "Corte")
    before = process.memory_info().rss
    both = {"X-Scope": "{image: Paris & Corte}"}
    status, _, body = await paris.get("/image/many/3000000", headers=both)
    assert status == 507 and "merges at most" in body["error"]["message"], body
    assert process.memory_info().rss - before < 300 * 1024 * 1024
    status, _, body = await paris.get("/image/many/10", headers=both)
    assert status == 200 and len(body["items"]) == 20


async def test_the_answers_of_an_and_share_one_byte_budget(sites: SitesFactory) -> None:
    paris, _ = await sites("Paris", "Corte", limits={"max_merge_total": 1_000_000})
    both = {"X-Scope": "{image: Paris & Corte}"}
    status, _, body = await paris.get("/image/many/150000", headers=both)  # 600 kB each
    assert status == 507 and "every site together" in body["error"]["message"], body
    assert await breaker_of(paris, "Corte") == "closed"  # the call's failure, not Corte's
    status, _, _ = await paris.get("/image/many/1000", headers=both)
    assert status == 200


async def test_a_slow_head_is_cut_and_others_are_served(sites: SitesFactory) -> None:
    paris, _ = await sites("Paris", "Corte", limits={"client_idle_timeout": 0.5})
    reader, writer = await asyncio.open_connection(*host_port(paris.url))
    writer.write(b"GET /image/echo HTTP/1.1\r\nHost: x\r\nX-Sco")  # and nothing more
    await writer.drain()
    closed = await asyncio.wait_for(reader.read(), timeout=10)  # the proxy hangs up
    assert closed == b""
    writer.close()
    await writer.wait_closed()
    status, _, _ = await paris.get("/image/echo", headers=CORTE)
    assert status == 200


async def test_connections_past_the_cap_get_a_503(sites: SitesFactory) -> None:
    paris, _ = await sites("Paris", "Corte", limits={"max_connections": 4})
    held = [await asyncio.open_connection(*host_port(paris.url)) for _ in range(4)]
    await asyncio.sleep(0.1)
    reader, writer = await asyncio.open_connection(*host_port(paris.url))
    answer = await asyncio.wait_for(reader.read(), timeout=5)
    assert answer.startswith(b"HTTP/1.1 503") and b"Too Many Connections" in answer
    writer.close()
    for _, held_writer in held:
        held_writer.close()
        await held_writer.wait_closed()
    await asyncio.sleep(0.1)
    status, _, _ = await paris.get("/image/echo", headers=CORTE)
    assert status == 200
    _, _, metrics = await paris.get("/metrics")
    assert b'edgescope_bound_refused_total{bound="connections_main"} 1.0' in metrics
    assert b'edgescope_bound_limit{bound="connections_main"} 4.0' in metrics


async def chunks(total: int, size: int = 256 * 1024) -> Any:
    for _ in range(total // size):
        yield b"x" * size


async def test_spooling_is_bounded_and_never_for_a_call_refused_anyway(
    sites: SitesFactory,
) -> None:
    paris, corte = await sites(
        "Paris",
        "Corte",
        limits={"max_spool_bytes": 2 * 1024 * 1024, "max_spools": 1},
        identity=True,  # a chunked body is kept only for a token Paris's Keystone accepts
    )
    either = "{image: Corte | Paris}"
    # no token, chunked: every backend would refuse it, so nothing is read nor spooled
    status, _, body = await paris.request(
        "PUT", "/image/echo", data=chunks(8 * 1024 * 1024), headers={"X-Scope": either}
    )
    assert status == 401 and "needs a token" in body["error"]["message"]
    # announced over the spool limit: refused before a byte is sent anywhere
    status, _, body = await paris.request(
        "PUT",
        "/image/echo",
        data=io.BytesIO(b"x" * (3 * 1024 * 1024)),
        headers={"X-Scope": either, "X-Auth-Token": "t"},
    )
    assert status == 413 and "max_spool_bytes" in body["error"]["message"]
    assert corte.seen == [] and paris.seen == []
    # chunked with a token, past the limit while it streams: 413, Corte never gets it whole
    status, _, body = await paris.request(
        "PUT",
        "/image/echo",
        data=chunks(8 * 1024 * 1024),
        headers={"X-Scope": either, "X-Auth-Token": "t"},
    )
    assert status == 413, body
    assert [h for h in corte.seen if h.get("size", 0) >= 8 * 1024 * 1024] == []
    assert await breaker_of(paris, "Corte") == "closed"
    # and within the limits, a fallback still resends the whole body
    status, _, body = await paris.request(
        "PUT",
        "/image/only/Paris",
        data=io.BytesIO(b"y" * (1024 * 1024)),
        headers={"X-Scope": "{image: Corte | Paris}", "X-Auth-Token": "t"},
    )
    assert status == 200 and body["site"] == "Paris" and body["size"] == 1024 * 1024


async def test_a_client_cannot_plant_a_scope_under_another_clients_request_id(
    sites: SitesFactory,
) -> None:
    """The scope remembered for correlation is stored under an id the proxy made, never
    under the id a client chose."""
    paris, _ = await sites("Paris", "Corte")
    victim = "req-00000000-0000-4000-8000-000000000001"
    planted = {"X-Scope": "{image: Corte}", "X-OpenStack-Request-ID": victim}
    status, _, body = await paris.get("/image/echo", headers=planted)
    assert status == 200 and body["site"] == "Corte"
    assert body["headers"]["X-OpenStack-Request-ID"] != victim  # a fresh id went on
    assert victim not in paris.proxy.memory
    # the victim's own call (a service call with that id and no scope) stays local
    status, _, body = await paris.get("/image/echo", headers={"X-OpenStack-Request-ID": victim})
    assert status == 200 and body["site"] == "Paris"
