"""One process of the 1,000-site simulation (``bench/scale.py``): many real site proxies.

    python -m bench._scale_worker --spec spec.json --address 10.77.0.3 --sites s3,s13,...

Each site gets a tiny real backend (an aiohttp app answering ``{"items": [{"id": <site>}]}``
under ``/image``) and a real :class:`~edgescope.proxy.server.SiteProxy` with the site
directory extension, its own listener, its key endorsed by the bench's authority, one seed,
no ``[[peers]]``. The driver talks to the worker over stdin/stdout (one JSON command per
line, one JSON answer per line), so a partition of the worker's namespace never cuts the
bench's own control.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from aiohttp import web
from yarl import URL

from bench._harness import raise_fd_limit, session, site_key, timed_get
from bench._tally import Tally
from edgescope.directory import model
from edgescope.directory.gossip import Directory, DirectoryConfig
from edgescope.proxy import keys
from edgescope.proxy.config import parse_config
from edgescope.proxy.server import SiteProxy

PROXY_PORT, BACKEND_PORT = 21000, 26000  # below the ephemeral range, clear of a testbed


def backend_app(site: str) -> web.Application:
    async def items(request: web.Request) -> web.Response:
        return web.json_response({"items": [{"id": site}]})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", items)
    return app


TCP_COUNTERS = ("ListenOverflows", "ListenDrops", "TCPSynRetrans", "TCPTimeouts")


def tcp_counters() -> dict[str, int]:
    """This network namespace's TCP counters that tell lost or refused connections."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            row = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return {name: int(row.get(name, 0)) for name in TCP_COUNTERS}
    return {}


def site_index(site: str) -> int:
    return int(site[1:])


class Worker:
    """The proxies and backends of one process, and the answers to the driver's commands."""

    def __init__(self, spec: dict[str, Any], address: str) -> None:
        self.spec = spec
        self.address = address
        self.authority = keys.load_private(spec["authority"])
        self.state = Path(spec["state_dir"])
        self.proxies: dict[str, SiteProxy] = {}
        self.directories: dict[str, Directory] = {}
        self.runners: dict[str, web.AppRunner] = {}
        self.process = psutil.Process()
        self.rss_empty = self.process.memory_info().rss

    def url(self, site: str) -> str:
        return f"http://{self.address}:{PROXY_PORT + site_index(site)}"

    async def add(self, site: str, seed: str) -> None:
        index = site_index(site)
        runner = web.AppRunner(backend_app(site), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self.address, BACKEND_PORT + index, backlog=1024).start()
        self.runners[site] = runner
        private, _ = site_key(site)
        key = keys.load_private(private)
        cert = model.endorse(self.authority, site, key.public_key(), expires=time.time() + 86400)
        folder = self.state / site
        folder.mkdir(parents=True, exist_ok=True)
        endorsement = folder / "endorsement.json"
        endorsement.write_text(model.canonical(cert.to_json()).decode())
        spec = self.spec
        config = parse_config(
            {
                "site": site,
                "listen": f"{self.address}:{PROXY_PORT + index}",
                "private_key": private,
                "services": [
                    {
                        "type": "image",
                        "prefix": "/image",
                        "backend": f"http://{self.address}:{BACKEND_PORT + index}",
                    }
                ],
                "limits": spec["limits"],
                "breaker": spec["breaker"],
                "trust": {"learned": ["route", "directory"]},  # the edge gossips
            }
        )
        settings = DirectoryConfig(
            folder,
            self.url(site),
            endorsement,
            (self.authority.public_key(),),
            (seed,) if seed else (),
            gossip_interval=spec["gossip_interval"],
            fanout=spec["gossip_fanout"],
        )
        directory = Directory(site, config.private_key, settings, ["image"])
        proxy = SiteProxy(config, extensions=[directory])
        await proxy.start()
        self.proxies[site], self.directories[site] = proxy, directory

    async def remove(self, site: str, *, leave: bool) -> None:
        if leave:
            await self.directories[site].leave()
        await self.proxies.pop(site).stop()
        del self.directories[site]
        await self.runners.pop(site).cleanup()

    def census(self, site: str) -> dict[str, int]:
        """How many of this worker's proxies know ``site`` as up, as left, or not at all."""
        counts = {"up": 0, "left": 0, "absent": 0, "version": 0}
        for directory in self.directories.values():
            entry = directory.entries.get(site)
            counts["absent" if entry is None else entry.state] += 1
            if entry is not None:
                counts["version"] = max(counts["version"], entry.version)
        return counts

    def versions(self, site: str, version: int) -> int:
        """How many of this worker's proxies have ``site``'s entry at ``version`` or newer."""
        return sum(
            1
            for d in self.directories.values()
            if (entry := d.entries.get(site)) is not None and entry.version >= version
        )

    def stats(self) -> dict[str, Any]:
        rss = self.process.memory_info().rss
        return {
            "proxies": len(self.proxies),
            "known": [len(d.entries) for d in self.directories.values()],
            "syncs": sum(d.syncs for d in self.directories.values()),
            "exchanges": sum(d.exchanges for d in self.directories.values()),
            "unanswered": dict(
                sum((Counter(d.unanswered) for d in self.directories.values()), Counter())
            ),
            "probes": {s: p.prober.sent for s, p in self.proxies.items()},
            "in_use": {
                s: len(p.peers.recently_used(p.config.breaker.probe_recent))
                for s, p in self.proxies.items()
            },
            "rss_mb": rss / 2**20,
            "rss_per_proxy_kb": (rss - self.rss_empty) / 1024 / max(1, len(self.proxies)),
            "cpu_s": time.process_time(),
            "tcp": tcp_counters(),
        }

    async def call(self, site: str, scope: str) -> dict[str, Any]:
        """One GET through ``site``'s proxy with ``scope`` (from inside this namespace)."""
        started = time.monotonic()
        async with (
            aiohttp.ClientSession() as client,
            client.get(
                self.url(site) + "/image/items", headers={"X-Scope": scope} if scope else {}
            ) as answer,
        ):
            body = await answer.read()
        return {"status": answer.status, "ms": (time.monotonic() - started) * 1000,
                "sites": answer.headers.get("X-Edgescope-Sites", ""),
                "body": body[:300].decode(errors="replace")}  # fmt: skip

    async def bare(self, urls: list[str], rounds: int) -> dict[str, Any]:
        """The baseline: ``rounds`` fan-outs straight to ``urls`` with bare aiohttp."""
        tally = Tally()  # every measured GET: a failed one is reported, never dropped
        async with session(0) as client:
            await asyncio.gather(*(timed_get(client, u, None, Tally()) for u in urls))  # warm
            before, started = time.process_time(), time.monotonic()
            walls = []
            for _ in range(rounds):
                t0 = time.monotonic()
                await asyncio.gather(*(timed_get(client, u, None, tally) for u in urls))
                walls.append((time.monotonic() - t0) * 1000)
            cpu = time.process_time() - before
        return {"cpu_s": cpu, "wall_ms": sorted(walls), "failed": tally.errors,
                "first_error": tally.first_error and str(tally.first_error),
                "elapsed_s": time.monotonic() - started}  # fmt: skip

    async def raw(self, urls: list[str], rounds: int) -> dict[str, Any]:
        """The floor of Python itself: the same GETs over kept-alive sockets with a bare
        asyncio protocol (a prebuilt request, the answer framed by Content-Length)."""
        links = list(await asyncio.gather(*(RawLink.open(url) for url in urls)))
        tally = Tally()
        try:
            before = time.process_time()
            walls = []
            for _ in range(rounds):
                t0 = time.monotonic()
                statuses = await asyncio.gather(*(link.get() for link in links))
                walls.append((time.monotonic() - t0) * 1000)
                for status in statuses:
                    tally.answer(status)
            cpu = time.process_time() - before
        finally:
            for link in links:
                link.close()
        return {"cpu_s": cpu, "wall_ms": sorted(walls), "failed": tally.errors,
                "first_error": tally.first_error and str(tally.first_error)}  # fmt: skip

    async def handle(self, command: dict[str, Any]) -> Any:
        kind = command["cmd"]
        if kind == "add":
            for site, seed in command["sites"]:
                await self.add(site, seed)
            return {"added": len(command["sites"])}
        if kind == "remove":
            await self.remove(command["site"], leave=command.get("leave", True))
            return {"removed": command["site"]}
        if kind == "publish":
            entry = self.directories[command["site"]].publish()
            return {"version": entry.version}
        if kind == "census":
            return self.census(command["site"])
        if kind == "versions":
            return {"count": self.versions(command["site"], command["version"])}
        if kind == "full":
            want = command["count"]
            return {"count": sum(1 for d in self.directories.values() if len(d.entries) >= want)}
        if kind == "stats":
            return self.stats()
        if kind == "call":
            return await self.call(command["site"], command["scope"])
        if kind == "raw":
            return await self.raw(command["urls"], command["rounds"])
        if kind == "bare":
            return await self.bare(command["urls"], command["rounds"])
        if kind == "stop":
            for site in list(self.proxies):
                await self.remove(site, leave=False)
            return {"stopped": True}
        raise ValueError(f"unknown command {kind!r}")


class RawLink(asyncio.Protocol):
    """One kept-alive connection that sends a prebuilt GET and waits for a whole answer."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[int] | None = None

    @classmethod
    async def open(cls, url: str) -> RawLink:
        target = URL(url)
        request = (f"GET {target.raw_path_qs} HTTP/1.1\r\nHost: {target.host}\r\n\r\n").encode()
        loop = asyncio.get_running_loop()
        _, link = await loop.create_connection(lambda: cls(request), target.host, target.port)
        return link

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head, sep, body = self.buffer.partition(b"\r\n\r\n")
        if not sep:
            return
        length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
        if len(body) >= length and self.done is not None and not self.done.done():
            self.buffer = b""
            self.done.set_result(int(head.split(b" ", 2)[1]))  # the status, checked by raw()

    async def get(self) -> int:
        """The answer's status."""
        assert self.transport is not None
        self.done = asyncio.get_running_loop().create_future()
        self.transport.write(self.request)
        return await self.done

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def serve(worker: Worker) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"ready": True, "pid": worker.process.pid}), flush=True)
    while line := await reader.readline():
        command = json.loads(line)
        try:
            answer = {"ok": await worker.handle(command)}
        except Exception as exc:  # the driver prints it; the worker keeps serving
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)
        if command["cmd"] == "stop":
            return


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._scale_worker")
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--address", required=True)
    args = parser.parse_args()
    raise_fd_limit()
    # A hundred proxies share this heap, a hundred times one proxy's: keep the collector's
    # full passes as rare as they would be for one (what the figures are about).
    gc.set_threshold(50_000, 20, 100)
    worker = Worker(json.loads(args.spec.read_text()), args.address)
    asyncio.run(serve(worker))


if __name__ == "__main__":
    main()
