"""Large bodies stream through a real ``edgescope proxy run`` process: its RSS stays flat."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
from aiohttp import web

import sitekeys

SIZE = 256 * 1024 * 1024
BLOCK = b"\x5a" * (1 << 20)


async def backend(seen: dict[str, Any]) -> web.AppRunner:
    async def upload(request: web.Request) -> web.Response:
        digest, size = hashlib.sha256(), 0
        async for chunk in request.content.iter_chunked(1 << 20):
            digest.update(chunk)
            size += len(chunk)
        seen["size"], seen["sha256"] = size, digest.hexdigest()
        return web.json_response({"size": size})

    async def download(request: web.Request) -> web.StreamResponse:
        out = web.StreamResponse()
        out.content_length = SIZE
        await out.prepare(request)
        for _ in range(SIZE // len(BLOCK)):
            await out.write(BLOCK)
        await out.write_eof()
        return out

    app = web.Application(client_max_size=1 << 40)
    app.router.add_put("/image/file", upload)
    app.router.add_get("/image/file", download)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


async def start_proxy(tmp_path: Path, backend_port: int) -> tuple[asyncio.subprocess.Process, str]:
    (tmp_path / "site.toml").write_text(
        f'site = "Paris"\nlisten = "127.0.0.1:0"\nprivate_key = "{sitekeys.private("Paris")}"\n'
        f'[[services]]\ntype = "image"\nprefix = "/image"\n'
        f'backend = "http://127.0.0.1:{backend_port}/image"\n'
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from edgescope.cli import main; main()",
        "proxy",
        "run",
        "--config",
        str(tmp_path / "site.toml"),
        "--log-level",
        "WARNING",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=20)
        listen = json.loads(line)["listen"].split("main=")[1].split(",")[0]
    except BaseException:
        process.kill()
        await process.wait()
        raise
    return process, f"http://{listen}"


@pytest.mark.slow
async def test_upload_and_download_keep_proxy_rss_flat(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}
    runner = await backend(seen)
    port = runner.addresses[0][1]
    process, url = await start_proxy(tmp_path, port)
    proxy = psutil.Process(process.pid)
    peak = {"rss": 0}
    baseline = proxy.memory_info().rss

    async def sample() -> None:
        while True:
            peak["rss"] = max(peak["rss"], proxy.memory_info().rss)
            await asyncio.sleep(0.02)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(SIZE // len(BLOCK)):
            yield BLOCK

    sampler = asyncio.ensure_future(sample())
    try:
        async with aiohttp.ClientSession() as session:
            headers = {"Content-Length": str(SIZE)}
            async with session.put(url + "/image/file", data=body(), headers=headers) as resp:
                assert resp.status == 200 and (await resp.json())["size"] == SIZE
            received = 0
            async with session.get(url + "/image/file") as resp:
                assert resp.status == 200
                async for chunk in resp.content.iter_chunked(1 << 20):
                    received += len(chunk)
            assert received == SIZE
    finally:
        sampler.cancel()
        process.terminate()
        await process.wait()
        await runner.cleanup()
    assert seen["size"] == SIZE
    growth = peak["rss"] - baseline
    print(f"proxy RSS: {baseline / 2**20:.0f} MB idle, peak growth {growth / 2**20:.1f} MB")
    # 2 x 256 MB went through; a buffering proxy would grow by hundreds of MB.
    assert growth < 40 * 1024 * 1024, f"proxy RSS grew by {growth / 2**20:.0f} MB"
