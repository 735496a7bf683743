"""Loopback attacks on the changes of the 2026-12-07 sessions (handshake RTT, watch probes,
resends on heal, per-process correlation ids, internal headers, partial reasons): real
proxies, real sockets; docs/security.md and docs/attacks/20261207b.md say what each pins."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest
from tests.proxy.conftest import SitesFactory
from tests.proxy.rawpeer import raw_peer

from edgescope.proxy import probes
from edgescope.proxy.partial import parse_partial


@pytest.fixture
def silent_listener() -> Iterator[str]:
    """A listener whose queue is full: further SYNs go unanswered (a blackholed peer)."""
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        fillers = [socket.socket() for _ in range(4)]
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(full.getsockname())
        yield f"http://127.0.0.1:{full.getsockname()[1]}"
        for filler in fillers:
            filler.close()


async def test_many_dead_peers_do_not_pile_up_probes(
    sites: SitesFactory, silent_listener: str
) -> None:
    """A client naming many dead sites (or a directory full of dead newcomers) makes each
    of them suspect for good: each is probed on its back-off and watched. The probes in
    flight stay bounded in all, not 3 per dead peer."""
    dead = {f"Dead{i}": {"url": silent_listener, "connect_timeout": 2.0} for i in range(120)}
    paris, _ = await sites(
        "Paris", "Corte", extra_peers={"Paris": dead}, breaker={"probe_interval": 30.0}
    )
    prober = paris.proxy.prober
    for name in dead:  # what a failed call to each does
        paris.proxy.peers.breaker(name).record_failure(now=0.0, reason="timed out")
    most = 0
    for _ in range(30):
        await asyncio.sleep(0.05)
        most = max(most, len(prober._tasks))
    assert most <= probes.MAX_PROBES + probes.MAX_WATCHES, most
    status, _, _ = await paris.get("/image/echo", headers={"X-Scope": "{image: Corte}"})
    assert status == 200


async def test_a_healed_peer_is_not_starved_of_probes_by_dead_ones(
    sites: SitesFactory, silent_listener: str
) -> None:
    """With the slots of probes and watches all taken by dead peers, a suspect peer that
    is up is still probed soon (the most overdue go first), not after every dead one."""
    dead = {f"Dead{i}": {"url": silent_listener, "connect_timeout": 2.0} for i in range(200)}
    paris, _ = await sites(
        "Paris", "Corte", extra_peers={"Paris": dead}, breaker={"probe_interval": 30.0}
    )
    for name in [*dead, "Corte"]:  # Corte last: the end of every walk in creation order
        paris.proxy.peers.breaker(name).record_failure(now=0.0, reason="timed out")
    corte = paris.proxy.peers.breaker("Corte")
    for _ in range(60):
        await asyncio.sleep(0.05)
        if not corte.suspect:
            break
    assert not corte.suspect


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 2x0 OK\r\n",
        b"garbage <script>\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n",
    ],
)
async def test_a_malformed_answer_tells_the_client_no_url_and_none_of_its_bytes(
    sites: SitesFactory, head: bytes
) -> None:
    """aiohttp's parse error names the URL it asked (a backend's internal address, for the
    own site) and quotes the site's bytes: a partial read's reason and an error's message
    said both to the client."""
    async with raw_peer(head + b"Content-Type: application/json\r\n", b"{}") as url:
        paris, _ = await sites("Paris", "Corte", extra_peers={"Paris": {"Evil": {"url": url}}})
        partial = {"X-Scope": "{image: Corte & Evil}", "X-Scope-Mode": "partial"}
        status, headers, _ = await paris.get("/image/items", headers=partial)
        assert status == 200
        missing = parse_partial(headers["X-Edgescope-Partial"])
        assert missing == [("Evil", "malformed HTTP answer")]
        status, _, body = await paris.get("/image/items", headers={"X-Scope": "{image: Evil}"})
    assert status == 503 and body["error"]["message"].endswith("malformed HTTP answer")
    text = str(body) + headers["X-Edgescope-Partial"]
    assert "127.0.0.1" not in text and "edgescope/svc" not in text and "HTTP/1.1" not in text


async def test_a_read_resent_on_a_heal_is_signed_again(sites: SitesFactory) -> None:
    """A resend may leave up to the call's read bound after the hop was signed (30 s by
    default, the hop window too; less with clock skew): the peer refused the old marker
    (403), and that refusal, the first answer, won over the read still coming."""
    paris, corte = await sites("Paris", "Corte", limits={"hop_window": 1.5})
    call = asyncio.ensure_future(
        paris.get("/image/slow/Corte?seconds=2.5", headers={"X-Scope": "{image: Corte}"})
    )
    await asyncio.sleep(2.0)  # past the window of the marker the read was signed with
    breaker = paris.proxy.peers.breaker("Corte")
    breaker.record_failure(now=0.0, reason="timed out")  # a cut seen, then its heal:
    breaker.record_success()  # what a watch probe getting through does
    status, _, body = await call
    assert status == 200, body
    assert len([r for r in corte.seen if "/slow/" in r.get("path", "")]) == 2
