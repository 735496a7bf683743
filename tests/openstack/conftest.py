"""Fixtures for the OSC plugin tests: a generic request recorder on 127.0.0.1, a clouds.yaml.

The recorder is *not* an OpenStack imitation: it answers every request with the same generic
404 error body and remembers the method, path and headers, so tests can count requests and
read the carriers the real ``openstack`` CLI attached.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from osc_recorder import Recorded, Recorder


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    state = Recorder(url="")

    async def record(request: web.Request) -> web.Response:
        state.requests.append(Recorded(request.method, request.path, dict(request.headers)))
        body = {"error": {"code": 404, "title": "Not Found", "message": "recorder"}}
        return web.json_response(body, status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.url = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


@pytest.fixture
def clouds_yaml(tmp_path: Path, recorder: Recorder) -> Path:
    """A clouds.yaml with two sites whose keystone is the recorder (no real request must go)."""
    text = "clouds:\n" + "".join(
        f"  {site}:\n"
        f"    region_name: {site}\n"
        f"    auth:\n"
        f"      auth_url: {recorder.url}/identity/v3\n"
        f"      username: alice\n      password: secret\n"
        f"      project_name: demo\n"
        f"      user_domain_name: Default\n      project_domain_name: Default\n"
        for site in ("Paris", "Corte")
    )
    path = tmp_path / "clouds.yaml"
    path.write_text(text)
    return path
