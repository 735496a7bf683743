"""`|`: fallback on refused, black-holed and 404; the breaker skips a known-down peer."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import time
from collections.abc import AsyncIterator
from typing import Any

from edgescope.proxy.protocol import SITES_HEADER

SitesFactory = Any


async def test_refused_port_falls_back(sites: SitesFactory, refused_url: str) -> None:
    paris, _corte = await sites(
        "Paris", "Corte", extra_peers={"Paris": {"Lyon": {"url": refused_url}}}
    )
    status, headers, body = await paris.request(
        "PUT", "/image/echo", data=b"x" * 300_000, headers={"X-Scope": "{image: Lyon | Corte}"}
    )
    assert status == 200 and body["site"] == "Corte" and body["size"] == 300_000
    assert headers[SITES_HEADER] == "Lyon=unreachable, Corte=200"


async def test_black_hole_times_out_then_falls_back(sites: SitesFactory, black_hole: str) -> None:
    paris, _corte = await sites(
        "Paris",
        "Corte",
        extra_peers={"Paris": {"Lyon": {"url": black_hole, "read_timeout": 0.3}}},
        hedging={"max_extra": 0},  # the timeout, not a hedge, moves on here
    )
    status, _headers, body = await paris.get(
        "/image/echo", headers={"X-Scope": "{image: Lyon | Corte}"}
    )
    assert status == 200 and body["site"] == "Corte"
    _, _, state = await paris.get("/edgescope/status")
    lyon = next(p for p in state["peers"] if p["name"] == "Lyon")
    assert "timed out" in lyon["last_error"]


async def test_404_falls_back_and_all_404_names_both(sites: SitesFactory) -> None:
    paris, _corte, _marseille = await sites("Paris", "Corte", "Marseille")
    status, headers, body = await paris.get(
        "/image/only/Marseille", headers={"X-Scope": "{image: Corte | Marseille}"}
    )
    assert status == 200 and body["site"] == "Marseille"
    assert headers[SITES_HEADER] == "Corte=404, Marseille=200"
    status, _, body = await paris.get(
        "/image/only/Nowhere", headers={"X-Scope": "{image: Corte | Marseille}"}
    )
    assert status == 404
    assert "Corte: 404" in body["error"]["message"] and "Marseille: 404" in body["error"]["message"]


async def test_breaker_skips_a_down_peer_without_calling_it(
    sites: SitesFactory, black_hole: str
) -> None:
    paris, _corte = await sites(
        "Paris",
        "Corte",
        breaker={"failure_threshold": 2, "failure_span": 0, "open_seconds": 60},
        extra_peers={"Paris": {"Lyon": {"url": black_hole, "read_timeout": 0.2}}},
    )
    scope = {"X-Scope": "{image: Lyon | Corte}"}
    # Two calls that wait for Lyon to fail open its breaker ('|' reads would not: once Lyon
    # is suspect, they ask Corte at once and stop waiting for Lyon, which is no failure).
    for _ in range(2):
        await paris.get("/image/echo", headers={"X-Scope": "{image: Lyon}"})
    _, _, state = await paris.get("/edgescope/status")
    assert next(p for p in state["peers"] if p["name"] == "Lyon")["breaker"] == "open"
    _, _, metrics_before = await paris.get("/metrics")
    status, _, body = await paris.get("/image/echo", headers=scope)
    assert status == 200 and body["site"] == "Corte"
    _, _, metrics_after = await paris.get("/metrics")
    # Lyon was not even tried: its latency histogram did not move, its breaker says open.
    count = 'edgescope_peer_request_seconds_count{peer="Lyon"}'
    assert count not in metrics_before.decode() and count not in metrics_after.decode()
    assert 'edgescope_breaker_state{peer="Lyon"} 2.0' in metrics_after.decode()
    status, headers, body = await paris.get("/image/echo", headers={"X-Scope": "{image: Lyon}"})
    assert status == 503 and "circuit breaker open" in body["error"]["message"]
    assert body["error"]["site"] == "Lyon" and headers["Retry-After"]
    # the proxy answered, not a backend:
    assert headers["X-Edgescope-Error"] == body["error"]["title"]


async def test_probes_keep_a_down_peer_open(sites: SitesFactory, refused_url: str) -> None:
    """Each failed probe re-opens the breaker, so past ``open_seconds`` a call still fails
    fast; without probes it would be let through as a half-open trial."""
    open_seconds = 0.5
    paris, _corte = await sites(
        "Paris",
        "Corte",
        breaker={"failure_threshold": 1, "open_seconds": open_seconds, "probe_interval": 0.05},
        peer_urls={"Paris": {"Corte": refused_url}},
    )
    scope = {"X-Scope": "{image: Corte}"}
    # Corte's proxy is "down" (Paris has the wrong port): one failure opens the breaker...
    status, _, body = await paris.get("/image/echo", headers=scope)
    assert status == 503 and "circuit breaker open" not in body["error"]["message"]
    breaker = paris.proxy.peers.breaker("Corte")
    assert breaker.state == "open"
    first_opened_at = breaker.opened_at
    # ...and probes keep re-opening it while Corte stays down.
    await asyncio.sleep(2 * open_seconds)
    assert breaker.state == "open" and breaker.opened_at > first_opened_at + open_seconds
    assert "refused" in breaker.last_error
    status, _, body = await paris.get("/image/echo", headers=scope)
    assert status == 503 and "circuit breaker open" in body["error"]["message"]


async def test_a_breaker_that_opens_is_probed_at_once_and_a_good_probe_closes_it(
    sites: SitesFactory,
) -> None:
    """The rounds are a minute apart here: only the probes the breaker's opening starts can
    find Corte healthy, and a good one closes the breaker (no half-open trial call)."""
    paris, _corte = await sites(
        "Paris",
        "Corte",
        breaker={"failure_threshold": 1, "open_seconds": 60, "probe_interval": 60},
    )
    breaker = paris.proxy.peers.breaker("Corte")
    breaker.record_failure(now=time.monotonic(), reason="simulated outage")  # a failed call
    assert breaker.state == "open"
    for _ in range(250):
        if breaker.state != "open":
            break
        await asyncio.sleep(0.02)
    # Closed within 5 s, rounds being a minute apart: by the probe sent at once (or, on a slow
    # machine, by a back-off probe or a watch sent while it was in flight; not a round).
    assert breaker.state == "closed" and paris.proxy.prober.sent >= 1
    status, _, body = await paris.get("/image/echo", headers={"X-Scope": "{image: Corte}"})
    assert status == 200 and body["site"] == "Corte"


async def test_body_is_replayed_after_a_404(sites: SitesFactory) -> None:
    paris, corte, _ = await sites("Paris", "Corte", "Marseille", identity=True)
    payload = b"0123456789" * 300_000  # 3 MB: spooled to disk past 1 MiB (token checked)
    status, headers, body = await paris.request(
        "PUT",
        "/image/only/Marseille",
        data=io.BytesIO(payload),
        headers={"X-Scope": "{image: Corte | Marseille}", "X-Auth-Token": "t"},
    )
    assert status == 200 and body["site"] == "Marseille"
    assert headers[SITES_HEADER] == "Corte=404, Marseille=200"
    assert corte.seen[0]["size"] == len(payload)  # Corte read it all, then said 404
    assert (body["size"], body["sha256"]) == (len(payload), hashlib.sha256(payload).hexdigest())


async def test_a_call_waiting_on_a_peer_gives_up_when_its_breaker_opens(
    sites: SitesFactory, black_hole: str
) -> None:
    """A call stuck on a silent peer (read timeout 60 s) is given up as soon as the probes
    open the breaker (a write: a read would have hedged). The write was sent to Lyon, which
    may still apply it: it is in doubt there and not re-sent to Corte."""
    paris, _corte = await sites(
        "Paris",
        "Corte",
        breaker={"failure_threshold": 1, "open_seconds": 60, "probe_interval": 0.2},
        extra_peers={"Paris": {"Lyon": {"url": black_hole, "read_timeout": 60}}},
    )
    status, _, body = await paris.request(
        "POST", "/image/echo", headers={"X-Scope": "{image: Lyon | Corte}"}
    )
    assert status == 504 and "at Lyon got no answer" in body["error"]["message"]
    assert "circuit breaker opened" in body["error"]["message"]
    assert _corte.backend_hits("/image/echo") == []
    _, _, state = await paris.get("/edgescope/status")
    lyon = next(p for p in state["peers"] if p["name"] == "Lyon")
    assert lyon["breaker"] == "open" and "circuit breaker opened" in lyon["last_error"]


async def test_a_one_site_call_is_not_given_up_when_the_breaker_opens(
    sites: SitesFactory, black_hole: str
) -> None:
    """``{image: Lyon}`` has nowhere else to go: while the probes open Lyon's breaker, the
    call keeps waiting (across a short cut it would be answered once the link heals) and
    ends by its own read timeout."""
    paris, _corte = await sites(
        "Paris",
        "Corte",
        breaker={"failure_threshold": 1, "open_seconds": 60, "probe_interval": 0.1},
        extra_peers={
            "Paris": {"Lyon": {"url": black_hole, "connect_timeout": 0.3, "read_timeout": 3}}
        },
    )
    status, _, body = await paris.get("/image/echo", headers={"X-Scope": "{image: Lyon}"})
    assert status == 503 and paris.proxy.peers.breaker("Lyon").state == "open"
    assert "timed out" in body["error"]["message"]
    assert "opened meanwhile" not in body["error"]["message"]


async def test_an_answer_whose_body_stalls_falls_back(sites: SitesFactory) -> None:
    """Lyon sends its headers, then 10 of its 100 bytes, then nothing: the ``|`` moves on to
    Corte after the read timeout instead of failing (a link cut mid-answer)."""
    partial = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
               b"Content-Length: 100\r\n\r\n{\"partial\"")  # fmt: skip
    async with _silent_peer(partial) as (port, _received):
        paris, _corte = await sites(
            "Paris",
            "Corte",
            extra_peers={
                "Paris": {"Lyon": {"url": f"http://127.0.0.1:{port}", "read_timeout": 0.5}}
            },
            hedging={"max_extra": 0},  # the read timeout, not a hedge, moves on here
        )
        status, headers, body = await paris.get(
            "/image/echo", headers={"X-Scope": "{image: Lyon | Corte}"}
        )
        assert status == 200 and body["site"] == "Corte"
        assert headers[SITES_HEADER].startswith("Lyon=unreachable")


async def test_404_where_reachable_and_cut_elsewhere_is_a_404(
    sites: SitesFactory, refused_url: str
) -> None:
    """So a client's lookup by id (404) goes on by name under a cut (docs/semantics.md)."""
    paris, corte = await sites(
        "Paris", "Corte", extra_peers={"Paris": {"Lyon": {"url": refused_url}}}
    )
    status, headers, body = await paris.get(
        "/image/only/Paris", headers={"X-Scope": "{image: Lyon | Corte}"}
    )
    assert status == 404, body
    assert headers[SITES_HEADER] == "Lyon=unreachable, Corte=404"
    assert "Lyon: unreachable" in body["error"]["message"]
    assert corte.backend_hits("/image/only/Paris")


async def test_a_write_with_no_answer_is_in_doubt_and_not_sent_elsewhere(
    sites: SitesFactory,
) -> None:
    """Lyon reads the whole POST, then answers nothing within the read timeout (a nova-api
    that holds the request while its keystone restarts, and creates the server later): the
    write may be applied at Lyon, so it is not re-sent to Corte (campaign cause D). A read
    over the same Lyon still falls back."""
    async with _silent_peer() as (port, received):
        paris, corte = await sites(
            "Paris",
            "Corte",
            extra_peers={
                "Paris": {"Lyon": {"url": f"http://127.0.0.1:{port}", "read_timeout": 0.3}}
            },
            hedging={"max_extra": 0},
        )
        scope = {"X-Scope": "{image: Lyon | Corte}"}
        status, _, body = await paris.request(
            "POST", "/image/servers", json={"server": {"name": "vm"}}, headers=scope
        )
        assert status == 504, body
        assert body["error"]["title"] == "Write In Doubt"
        assert (
            "Lyon" in body["error"]["message"]
            and "not sent to another site" in (body["error"]["message"])
        )
        assert received == [b'POST {"server": {"name": "vm"}}']
        assert corte.backend_hits("/servers") == []
        status, _, body = await paris.get("/image/servers", headers=scope)
        assert status == 200 and body["site"] == "Corte"


async def test_a_write_in_doubt_inside_an_and_is_not_sent_to_the_next_site(
    sites: SitesFactory,
) -> None:
    """The same inside ``&``: ``Paris & (Lyon | Corte)``, Lyon reads the whole POST and
    answers nothing: the write may be applied at Lyon, so the nested ``|`` does not send it
    on to Corte; the ``&`` fails naming Lyon. A read over the same scope still falls back."""
    async with _silent_peer() as (port, received):
        paris, corte = await sites(
            "Paris",
            "Corte",
            extra_peers={
                "Paris": {"Lyon": {"url": f"http://127.0.0.1:{port}", "read_timeout": 0.3}}
            },
            hedging={"max_extra": 0},
        )
        scope = {"X-Scope": "{image: Paris & (Lyon | Corte)}"}
        status, headers, body = await paris.request(
            "POST", "/image/servers", json={"server": {"name": "vm"}}, headers=scope
        )
        assert status >= 500, body
        assert received == [b'POST {"server": {"name": "vm"}}']
        assert corte.backend_hits("/servers") == []  # never sent on: it may exist at Lyon
        assert "not tried: the write is in doubt at Lyon" in body["error"]["message"]
        assert headers[SITES_HEADER].startswith("Paris=")
        status, _, body = await paris.get("/image/servers", headers=scope)
        assert status == 200, body
        assert corte.backend_hits("/servers")  # the read did fall back to Corte


@contextlib.asynccontextmanager
async def _silent_peer(first: bytes = b"") -> AsyncIterator[tuple[int, list[bytes]]]:
    """A peer on loopback that reads each request whole (its method and body are recorded in
    the list it yields with its port), sends ``first`` (nothing by default), then nothing
    more until the block ends."""
    done = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []
    received: list[bytes] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n")
             if line.lower().startswith(b"content-length:")),
            0,
        )  # fmt: skip
        received.append(head.split(b" ", 1)[0] + b" " + await reader.readexactly(length))
        writer.write(first)
        await writer.drain()
        await done.wait()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], received
    finally:
        done.set()
        for writer in writers:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        server.close()
        await server.wait_closed()
