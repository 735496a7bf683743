"""Two proxies per site behind Debian's HAProxy share their site's state in a real MariaDB;
one of Paris's is killed (SIGKILL) during a stream of ``&`` writes, with the link to Corte
cut for a while so writes queue: every acknowledged write ends up applied exactly once at
each site. Corte's two proxies receive the replays (either may get any write).

Real parts only: ``edgescope proxy run`` processes, ``haproxy``, ``mariadbd``, and the
generic "resource" backends of the replica tests (each create gets a fresh random id, so a
write applied twice shows as two items with one name).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import sitekeys
from edgescope.proxy.carriers import MODE_HEADER
from edgescope.proxy.config_file import render_config
from edgescope.replicas.registry import Registry
from loopback import reserve_port
from replicas.conftest import Link, bound_socket, resource_app

pytestmark = [pytest.mark.mariadb, pytest.mark.slow]
SCOPE = "{image: Paris & Corte}"
WRITES = 60
TIMING = {"replay_interval": 0.2, "sync_interval": 0.2, "lease_seconds": 2.0, "claim_seconds": 4.0}


def site_toml(site: str, port: int, backend: str, peer: str, peer_url: str, database: str) -> str:
    return render_config(
        {
            "site": site,
            "listen": f"127.0.0.1:{port}",
            "private_key": sitekeys.private(site),
            "services": [{"type": "image", "prefix": "/image", "backend": f"{backend}/image"}],
            "peers": [
                {
                    "name": peer,
                    "url": peer_url,
                    "public_key": sitekeys.public(peer),
                    "connect_timeout": 0.5,
                    "read_timeout": 5.0,
                }
            ],
            "breaker": {"probe_interval": 0.2, "open_seconds": 0.3},
            "identity": {
                "auth_url": f"{backend}/identity/v3",
                "username": "edgescope",
                "password": "pw",
                "project": "service",
            },
            "replicas": {"database": database, **TIMING},
        }
    )


async def start_proxy(config: Path) -> asyncio.subprocess.Process:
    with config.with_suffix(".log").open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from edgescope.cli import main; main()",
            "proxy", "run", "--config", str(config), "--log-level", "WARNING",
            stdout=asyncio.subprocess.PIPE, stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    assert process.stdout is not None
    try:  # a hang guard: at load 30 a proxy's start-up (its imports) took over 30 s
        line = await asyncio.wait_for(process.stdout.readline(), timeout=120)
    except TimeoutError:
        process.kill()
        await process.communicate()
        raise
    assert b'"started"' in line, line
    return process


def haproxy_cfg(port: int, servers: dict[str, int]) -> str:
    """Paris's HAProxy in front of its two proxies: health checks, redispatch on a dead one."""
    lines = "\n".join(
        f"    server {name} 127.0.0.1:{p} check inter 200ms fall 1 rise 1"
        for name, p in servers.items()
    )
    return f"""global
    maxconn 256
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch
frontend paris
    bind 127.0.0.1:{port}
    default_backend edgescope
backend edgescope
    balance roundrobin
    option httpchk GET /edgescope/health
    http-check expect status 200
{lines}
"""


@pytest.fixture
async def stack(
    tmp_path: Path, mariadb_database: Callable[[], str]
) -> AsyncIterator[dict[str, Any]]:
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed (make system-deps installs it)")
    items: dict[str, dict[str, dict[str, Any]]] = {"Paris": {}, "Corte": {}}
    runners, processes = [], []
    backends = {}
    for site in items:
        runner = web.AppRunner(resource_app(site, items[site], []), access_log=None)
        await runner.setup()
        sock = bound_socket()
        await web.SockSite(runner, sock).start()
        runners.append(runner)
        backends[site] = f"http://127.0.0.1:{sock.getsockname()[1]}"
    paris_db, corte_db = mariadb_database(), mariadb_database()
    names = ("Paris", "Corte", "paris-1", "paris-2", "corte-1", "corte-2")
    held = {n: reserve_port() for n in names}
    fronts = {n: int(held[n].getsockname()[1]) for n in ("Paris", "Corte")}
    ports = {n: int(held[n].getsockname()[1]) for n in held if n.islower()}
    corte_link = Link(fronts["Corte"])  # Paris -> Corte's HAProxy, cut by the test
    await corte_link.heal()
    for site, front in fronts.items():
        conf = tmp_path / f"haproxy-{site}.cfg"
        mine = {k: v for k, v in ports.items() if k.startswith(site.lower())}
        conf.write_text(haproxy_cfg(front, mine))
        with (tmp_path / f"haproxy-{site}.log").open("ab") as log:
            haproxy = await asyncio.create_subprocess_exec(
                "haproxy", "-db", "-f", str(conf), stdout=asyncio.subprocess.DEVNULL, stderr=log
            )
        processes.append(haproxy)
    try:
        for name, port in ports.items():
            site, peer = ("Corte", "Paris") if name.startswith("corte") else ("Paris", "Corte")
            peer_url = f"http://127.0.0.1:{fronts['Paris']}" if site == "Corte" else corte_link.url
            config = tmp_path / f"{name}.toml"
            database = corte_db if site == "Corte" else paris_db
            config.write_text(site_toml(site, port, backends[site], peer, peer_url, database))
            processes.append(await start_proxy(config))
        yield {
            "front": f"http://127.0.0.1:{fronts['Paris']}",
            "items": items,
            "link": corte_link,
            "paris_1": processes[2],
            "tmp": tmp_path,
            "paris_db": paris_db,
            "corte_db": corte_db,
        }
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 10)
        await corte_link.cut()
        corte_link.sock.close()
        for sock in held.values():
            sock.close()
        for runner in runners:
            await runner.cleanup()


async def test_killing_one_of_two_proxies_during_writes_loses_and_duplicates_nothing(
    stack: dict[str, Any],
) -> None:
    acknowledged: list[str] = []
    refused: list[tuple[str, Any]] = []
    headers = {"X-Scope": SCOPE, MODE_HEADER: "eventual", "X-Auth-Token": "admin-token"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:

        async def write(name: str) -> None:
            try:
                async with session.post(
                    stack["front"] + "/image/things",
                    json={"thing": {"name": name}},
                    headers=headers,
                ) as response:
                    await response.read()
                    if 200 <= response.status < 300:
                        acknowledged.append(name)
                    else:
                        refused.append((name, response.status))
            except aiohttp.ClientError as exc:
                refused.append((name, repr(exc)))

        for i in range(WRITES):
            if i == 10:
                await stack["link"].cut()  # Corte cut off: writes queue at Paris
            if i == 25:
                stack["paris_1"].send_signal(signal.SIGKILL)  # mid-stream, with queued writes
            if i == 45:
                await stack["link"].heal()
            # two writes at a time: one of them is often in flight at the killed proxy
            await asyncio.gather(write(f"w{i}a"), write(f"w{i}b"))

    paris = Registry(stack["paris_db"], read_only=False)
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while paris.pending():  # the surviving proxy replays what both proxies queued
            assert asyncio.get_running_loop().time() < deadline, paris.pending()[:3]
            await asyncio.sleep(0.2)
        states = {op.state for op in paris.pending(include_done=True)}
        assert states <= {"done"}, states  # nothing refused or superseded
        queued = len(paris.pending(include_done=True))
    finally:
        paris.close()

    counts = {site: _count_names(found.values()) for site, found in stack["items"].items()}
    assert len(acknowledged) >= WRITES, refused[:10]  # most writes were acknowledged
    assert queued >= 20  # the cut made writes queue, some of them at the killed proxy
    for name in acknowledged:
        assert counts["Paris"].get(name) == 1, (name, counts["Paris"].get(name))
        assert counts["Corte"].get(name) == 1, (name, counts["Corte"].get(name))
    for site, by_name in counts.items():  # unacknowledged writes too: never applied twice
        assert max(by_name.values()) == 1, (site, [n for n, c in by_name.items() if c > 1])
    print(f"acknowledged {len(acknowledged)}, refused {refused}, queued {queued}")


def _count_names(things: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for thing in things:
        counts[thing["name"]] = counts.get(thing["name"], 0) + 1
    return counts
