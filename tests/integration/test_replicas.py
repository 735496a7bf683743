"""Replicated images on the real OpenStack testbed: create by ``&``, then use one handle.

Two in-process edgescope proxies with replicas on (Paris and Corte, built from the
testbed's own ``proxy.toml``, peers rewired to each other) sit in front of the testbed's
real glance and keystone. Calls go over HTTP with a real admin token, with the scope in
``X-Scope`` and piggybacked on the token, as the OSC plugin sends them.
"""

from __future__ import annotations

import dataclasses
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from yarl import URL

from edgescope.openstack.scenarios import Context
from edgescope.proxy.carriers import attach_piggyback
from edgescope.proxy.config import PeerConfig, load_config
from edgescope.proxy.merge import ORIGIN_FIELD, SITES_HEADER
from edgescope.proxy.server import SiteProxy
from edgescope.replicas.collapse import REPLICAS_FIELD
from edgescope.replicas.fanout import SET_HEADER

pytestmark = [pytest.mark.testbed, pytest.mark.slow]
SITES = ("Paris", "Corte")
BOTH = "{image: Paris & Corte}"


class Client:
    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        self.session, self.url, self.token = session, url, token

    async def call(self, method: str, path: str, scope: str, **kwargs: Any) -> tuple[int, Any, Any]:
        headers = {
            "X-Auth-Token": attach_piggyback(self.token, scope),
            "X-Scope": scope,
            **kwargs.pop("headers", {}),
        }
        async with self.session.request(
            method, self.url + path, headers=headers, **kwargs
        ) as response:
            raw = await response.read()
            body = await response.json(content_type=None) if raw.startswith(b"{") else raw
            return response.status, response.headers, body


@pytest.fixture
async def replica_proxies(ctx: Context, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    state = ctx.testbed.clouds_yaml.parent
    configs = {site: state / "sites" / site / "etc" / "proxy.toml" for site in SITES}
    if not all(path.is_file() for path in configs.values()):
        pytest.skip(f"the testbed in {state} has no proxy.toml for {', '.join(SITES)}")
    socks = {}
    for site in SITES:
        socks[site] = socket.socket()
        socks[site].bind(("127.0.0.1", 0))
    proxies: dict[str, SiteProxy] = {}
    for site in SITES:
        other = next(s for s in SITES if s != site)
        url = URL(f"http://127.0.0.1:{socks[other].getsockname()[1]}")
        config = dataclasses.replace(
            load_config(configs[site]), port=0, peers=(PeerConfig(other, url, 2.0, 120.0),)
        )
        proxies[site] = SiteProxy(config, replicas_dir=str(tmp_path / site))
        await proxies[site].start(sockets={"main": socks[site]})
    auth = yaml.safe_load(ctx.testbed.clouds_yaml.read_text())["clouds"][
        ctx.testbed.cloud_name("Paris", admin=True)
    ]["auth"]
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300))
    request = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": auth["username"],
                        "password": auth["password"],
                        "domain": {"name": auth["user_domain_name"]},
                    }
                },
            },
            "scope": {
                "project": {
                    "name": auth["project_name"],
                    "domain": {"name": auth["project_domain_name"]},
                }
            },
        }
    }
    try:
        url = proxies["Paris"].url
        async with session.post(url + "/identity/v3/auth/tokens", json=request) as response:
            assert response.status == 201, await response.text()
            token = response.headers["X-Subject-Token"]
        yield {"client": Client(session, url, token), **proxies}
    finally:
        await session.close()
        for proxy in proxies.values():
            await proxy.stop()


async def test_image_lifecycle_by_handle(replica_proxies: dict[str, Any]) -> None:
    client: Client = replica_proxies["client"]
    name = f"replica-{uuid.uuid4().hex[:8]}"
    status, headers, image = await client.call(
        "POST",
        "/image/v2/images",
        BOTH,
        json={"name": name, "disk_format": "raw", "container_format": "bare"},
    )
    assert status == 201, image
    handle = image["id"]
    assert headers[SET_HEADER] == handle
    records = {s: replica_proxies[s].replicas.registry.lookup(handle) for s in SITES}
    assert all(r is not None for r in records.values())
    corte_id = records["Corte"].member_id("Corte")
    assert corte_id and corte_id != handle

    data = b"edgescope" * 10_000
    status, headers, body = await client.call(
        "PUT",
        f"/image/v2/images/{handle}/file",
        BOTH,
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert status == 204, body
    assert headers[SITES_HEADER] == "Paris=204, Corte=204"

    status, _, shown = await client.call("GET", f"/image/v2/images/{handle}", "{image: Corte}")
    assert status == 200 and shown["id"] == corte_id and shown["status"] == "active"
    assert shown["size"] == len(data)

    status, _, listed = await client.call("GET", f"/image/v2/images?name={name}", BOTH)
    assert status == 200
    [item] = listed["images"]
    assert item["id"] == handle and item[ORIGIN_FIELD] == "Paris & Corte"
    assert item[REPLICAS_FIELD] == {"Paris": handle, "Corte": corte_id}

    status, _, body = await client.call("DELETE", f"/image/v2/images/{handle}", BOTH)
    assert status == 204, body
    for site in SITES:
        assert replica_proxies[site].replicas.registry.lookup(handle) is None
    status, _, _ = await client.call("GET", f"/image/v2/images/{corte_id}", "{image: Corte}")
    assert status == 404
