"""The spool guard (proxy/spool.py): a body kept to be resent is kept only for a token its
identity site accepts, and all the kept bodies together stay within their bounds (issue 20,
finding 8: ``X-Auth-Token: x`` got 400 MiB spooled before any service saw the token)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

import sitekeys
from loopback import proxy_fixtures

SitesFactory = Any
MiB = 1024 * 1024
FAN_OUT = "{image: Paris & (Corte | Lyon)}"


async def chunks(total: int, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for _ in range(total // size):
        yield b"x" * size


def metric(text: bytes, name: str, bound: str) -> float:
    found = re.search(rf'^{name}{{bound="{bound}"}} (\S+)$', text.decode(), re.M)
    assert found is not None, (name, bound)
    return float(found.group(1))


async def bound_of(site: Any, name: str, bound: str) -> float:
    status, _, text = await site.get("/metrics")
    assert status == 200
    return metric(text, name, bound)


def image_hits(site: Any) -> list[dict[str, Any]]:
    return [r for r in site.seen if r.get("service") == "image"]


async def test_a_token_keystone_refuses_gets_nothing_spooled(sites: SitesFactory) -> None:
    """The finding's attack, chunked and announced: 401 before a byte is kept or sent."""
    paris, corte, lyon = await sites("Paris", "Corte", "Lyon", identity=True)
    for data in (chunks(16 * MiB), io.BytesIO(b"x" * (8 * MiB))):
        status, _, body = await paris.request(
            "PUT",
            "/image/echo",
            data=data,
            headers={"X-Scope": FAN_OUT, "X-Auth-Token": "bad-x"},
        )
        assert status == 401, body
        assert "identity site accepts" in body["error"]["message"]
    assert image_hits(paris) == image_hits(corte) == image_hits(lyon) == []
    # Paris's own Keystone was asked, with Paris's service token, about the client's token
    checks = [r for r in paris.seen if r.get("service") == "identity"]
    assert len(checks) == 2
    assert checks[0]["headers"]["X-Subject-Token"] == "bad-x"
    assert checks[0]["headers"]["X-Auth-Token"] == "service-token-of-Paris"
    assert await bound_of(paris, "edgescope_bound_refused_total", "spools") == 2
    assert await bound_of(paris, "edgescope_bound_size", "spool_bytes") == 0
    # the same upload with a token Keystone accepts is kept and resent as before
    status, _, body = await paris.request(
        "PUT",
        "/image/only/Lyon",
        data=io.BytesIO(b"y" * (3 * MiB)),
        headers={"X-Scope": "{image: Corte | Lyon}", "X-Auth-Token": "good"},
    )
    assert status == 200 and body["site"] == "Lyon" and body["size"] == 3 * MiB
    assert await bound_of(paris, "edgescope_bound_size", "spool_bytes") == 0  # given back


async def test_the_token_is_checked_at_the_identity_site_of_the_scope(sites: SitesFactory) -> None:
    """A user of Corte's Keystone: Corte's proxy validates with Corte's own service token."""
    paris, corte = await sites("Paris", "Corte", identity=True)
    scope = "{image: Corte | Paris, identity: Corte}"
    status, _, body = await paris.request(
        "PUT",
        "/image/echo",
        data=chunks(4 * MiB),
        headers={"X-Scope": scope, "X-Auth-Token": "bad-at-corte"},
    )
    assert status == 401 and "Corte: 404" in body["error"]["message"], body
    [check] = [r for r in corte.seen if r.get("service") == "identity"]
    assert check["headers"]["X-Subject-Token"] == "bad-at-corte"
    assert check["headers"]["X-Auth-Token"] == "service-token-of-Corte"
    assert not [r for r in paris.seen if r.get("service") == "identity"]
    status, _, body = await paris.request(
        "PUT",
        "/image/echo",
        data=chunks(4 * MiB),
        headers={"X-Scope": scope, "X-Auth-Token": "user-of-corte"},
    )
    assert status == 200 and body["site"] == "Corte" and body["size"] == 4 * MiB


async def test_a_proxy_that_cannot_check_tokens_keeps_only_small_bodies(
    sites: SitesFactory,
) -> None:
    paris, _corte = await sites("Paris", "Corte")  # no [identity]
    either = {"X-Scope": "{image: Corte | Paris}", "X-Auth-Token": "t"}
    status, _, body = await paris.request(
        "PUT", "/image/echo", data=io.BytesIO(b"x" * (2 * MiB)), headers=either
    )
    assert status == 401 and "Paris: this proxy has no [identity]" in body["error"]["message"], body
    status, _, body = await paris.request(
        "PUT", "/image/echo", data=io.BytesIO(b"x" * MiB), headers=either
    )
    assert status == 200 and body["size"] == MiB


async def test_all_the_kept_bodies_together_stay_within_max_spool_total(
    sites: SitesFactory,
) -> None:
    paris, _corte = await sites(
        "Paris", "Corte", identity=True, limits={"max_spool_total": 2 * MiB}
    )
    either = {"X-Scope": "{image: Corte | Paris}", "X-Auth-Token": "t"}
    status, _, body = await paris.request(
        "PUT", "/image/only/Paris", data=chunks(4 * MiB), headers=either
    )
    assert status == 503 and "max_spool_total" in body["error"]["message"], body
    assert await bound_of(paris, "edgescope_bound_size", "spool_bytes") == 0
    assert await bound_of(paris, "edgescope_bound_limit", "spool_bytes") == 2 * MiB
    status, _, body = await paris.request(
        "PUT", "/image/only/Paris", data=chunks(MiB), headers=either
    )
    assert status == 200 and body["site"] == "Paris" and body["size"] == MiB


async def test_past_max_spools_a_call_gets_a_503_until_one_is_given_back(
    sites: SitesFactory,
) -> None:
    paris, _corte = await sites("Paris", "Corte", identity=True, limits={"max_spools": 1})
    either = {"X-Scope": "{image: Corte | Paris}", "X-Auth-Token": "t"}
    release = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield b"x" * 1024
        await release.wait()
        yield b"y" * 1024

    first = asyncio.ensure_future(
        paris.request("PUT", "/image/only/Paris", data=stalled(), headers=either)
    )
    for _ in range(200):  # until the first upload holds the one spool
        if await bound_of(paris, "edgescope_bound_size", "spools") == 1:
            break
        await asyncio.sleep(0.02)
    status, _, body = await paris.request(
        "PUT", "/image/only/Paris", data=io.BytesIO(b"z" * 10), headers=either
    )
    assert status == 503 and "being kept to be resent" in body["error"]["message"], body
    release.set()
    status, _, body = await first
    assert status == 200 and body["size"] == 2048
    assert await bound_of(paris, "edgescope_bound_size", "spools") == 0


async def test_the_findings_attack_on_a_real_proxy_process(
    tmp_path: Path, refused_url: str
) -> None:
    """The finding as reported, against ``edgescope proxy run``: ``{image: Paris & (Corte |
    Lyon)}`` with a token nobody issued gets a 401 before the body is read, and nothing is
    kept; an upload with a good token is still kept and resent."""
    seen: list[dict[str, Any]] = []
    backend_app = proxy_fixtures().backend_app  # this folder's conftest, by its path
    runner = web.AppRunner(backend_app("Paris", seen), access_log=None)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    backend = f"http://127.0.0.1:{sock.getsockname()[1]}"
    peers = "".join(
        f'[[peers]]\nname = "{name}"\nurl = "{refused_url}"\n'
        f'public_key = "{sitekeys.public(name)}"\n'
        for name in ("Corte", "Lyon")
    )
    (tmp_path / "paris.toml").write_text(
        f'site = "Paris"\nlisten = "127.0.0.1:0"\nprivate_key = "{sitekeys.private("Paris")}"\n'
        f'[[services]]\ntype = "image"\nprefix = "/image"\nbackend = "{backend}/image"\n'
        f"{peers}"
        f'[identity]\nauth_url = "{backend}/identity/v3"\nusername = "edgescope"\n'
        'password = "pw"\nproject = "service"\n'
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from edgescope.cli import main; main()",
        "proxy", "run", "--config", str(tmp_path / "paris.toml"), "--log-level", "WARNING",
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=60)  # a failure bound
        url = "http://" + json.loads(line)["listen"].split("main=")[1].split(",")[0]
        async with aiohttp.ClientSession() as client:
            attack = {"X-Scope": FAN_OUT, "X-Auth-Token": "bad-x"}
            async with client.put(url + "/image/echo", data=chunks(16 * MiB), headers=attack) as r:
                body = await r.json()
                assert r.status == 401 and "identity site accepts" in body["error"]["message"]
            good = {"X-Scope": "{image: Lyon | Paris}", "X-Auth-Token": "good"}
            payload = io.BytesIO(b"y" * (3 * MiB))
            async with client.put(url + "/image/echo", data=payload, headers=good) as r:
                body = await r.json()
                assert r.status == 200 and body["site"] == "Paris" and body["size"] == 3 * MiB
            async with client.get(url + "/metrics") as r:
                text = await r.read()
        assert metric(text, "edgescope_bound_refused_total", "spools") == 1
        assert metric(text, "edgescope_bound_size", "spool_bytes") == 0
        checks = [r["headers"]["X-Subject-Token"] for r in seen if r.get("service") == "identity"]
        assert checks == ["bad-x", "good"]
        assert [r["size"] for r in seen if r.get("service") == "image"] == [3 * MiB]
    finally:
        process.terminate()
        await process.wait()
        await runner.cleanup()
