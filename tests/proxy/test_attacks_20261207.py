"""Loopback attacks on the fixes of the 2026-12-07 review (real proxies, real HTTP): what an
attacker can still do, pinned so it stays that way (docs/security-review-20261207.md)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from tests.proxy.conftest import SitesFactory
from tests.proxy.rawpeer import raw_peer

from edgescope.proxy.carriers import handle_of, new_correlation_id

JSON = b"Content-Type: application/json\r\n"
TRANS = [{"read": "X-Trans-Id", "write": "X-Trans-Id-Extra", "services": ["compute"]}]


async def test_no_forged_or_altered_id_is_taken_for_one_the_proxy_issued(
    sites: SitesFactory,
) -> None:
    """Random version-8 ids, and a real id with one bit of its tag flipped, are nobody's:
    local (an attacker cannot make a proxy refuse calls by inventing ids)."""
    paris, _ = await sites("Paris", "Corte", carriers=TRANS, limits={"scope_memory": 16})
    status, _, body = await paris.get("/compute/echo", headers={"X-Scope": "{image: Corte}"})
    real = body["headers"]["X-OpenStack-Request-ID"]
    bits = uuid.UUID(real.removeprefix("req-")).int ^ 1
    altered = f"req-{uuid.UUID(int=bits)}"
    assert paris.proxy.memory.issued(real) and not paris.proxy.memory.issued(altered)
    for rid in [altered, *(new_correlation_id() for _ in range(50))]:
        for headers in ({"X-OpenStack-Request-ID": rid}, {"X-Trans-Id": f"tx-{handle_of(rid)}"}):
            status, _, body = await paris.get("/image/echo", headers=headers)
            assert status == 200 and body["site"] == "Paris"


async def test_a_spray_of_made_up_tokens_can_evict_but_never_misroute(
    sites: SitesFactory,
) -> None:
    """Tokens cost nothing to invent: a client spraying one per call gets as many shares
    and can make the memory forget another client's scope. What it cannot do is send that
    client's later calls to the wrong site: they get the 503."""
    paris, _ = await sites("Paris", "Corte", carriers=TRANS, limits={"scope_memory": 32})
    status, _, body = await paris.get(
        "/compute/echo", headers={"X-Scope": "{image: Corte}", "X-Auth-Token": "victim"}
    )
    handle = body["headers"]["X-Trans-Id-Extra"]

    async def one(i: int) -> int:
        headers = {"X-Scope": "{image: Paris}", "X-Auth-Token": f"made-up-{i}"}
        status, _, _ = await paris.get(f"/compute/echo/{i}", headers=headers)
        return status

    assert set(await asyncio.gather(*(one(i) for i in range(64)))) == {200}
    before = len(paris.seen)
    status, _, body = await paris.get("/image/echo", headers={"X-Trans-Id": f"tx-{handle}"})
    assert status == 503 and body["error"]["title"] == "Remembered Scope Forgotten"
    assert len(paris.seen) == before


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"HTTP/1.1 200 OK\x1b[2J\r\n", 502),  # a control character in the reason phrase
        (b"HTTP/1.1 200 OK\r\nX-A: \x00\r\n", 503),  # a NUL: the parser refuses it
        (b"HTTP/1.1 200 OK\r\nX-\x01A: b\r\n", 503),  # in a name: the parser refuses it
        (b"HTTP/1.1 200 OK\r\nX-A: b\r\n\r\nX-B: c\r\n", 200),  # after the head: body
    ],
)
async def test_control_characters_anywhere_in_a_peers_head(
    sites: SitesFactory, head: bytes, status: int
) -> None:
    async with raw_peer(head + JSON, b"{}", once=True) as url:
        paris, _ = await sites("Paris", "Corte", extra_peers={"Paris": {"Evil": {"url": url}}})
        got, _, body = await paris.get("/image/echo", headers={"X-Scope": "{image: Evil}"})
    assert got == status, body
    again, _, _ = await paris.get("/image/echo", headers={"X-Scope": "{image: Corte}"})
    assert again == 200  # the proxy and its client connection are fine


async def test_internal_headers_in_any_case_and_repeated_are_stripped(
    sites: SitesFactory,
) -> None:
    head = (
        b"HTTP/1.1 200 OK\r\nx-EDGESCOPE-partial: a\r\nX-Edgescope-Partial: b\r\n"
        b"X-EDGESCOPE-SITES: Nowhere=200\r\nX-Edgescope-Replica-Set: forged\r\n"
    )
    async with raw_peer(head + JSON, b"{}", once=True) as url:
        paris, _ = await sites("Paris", "Corte", extra_peers={"Paris": {"Evil": {"url": url}}})
        status, headers, _ = await paris.get("/image/echo", headers={"X-Scope": "{image: Evil}"})
    assert status == 200
    internal = {k.lower(): v for k, v in headers.items() if k.lower().startswith("x-edgescope-")}
    assert internal == {"x-edgescope-sites": "Evil=200"}
