"""Replicated images on the real OpenStack testbed: create by ``&``, then use one handle.

Two in-process edgescope proxies with replicas on (Paris and Corte, built from the
testbed's own ``proxy.toml``, peers rewired to each other) sit in front of the testbed's
real glance and keystone. Stopping the Corte proxy cuts Corte off (no root needed);
starting it again on its port heals the cut. Calls go over HTTP with a real admin token,
with the scope in ``X-Scope`` and piggybacked on the token, as the OSC plugin sends them.
"""

from __future__ import annotations

import asyncio
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
from edgescope.proxy.carriers import MODE_HEADER, attach_piggyback
from edgescope.proxy.config import PeerConfig, load_config
from edgescope.proxy.merge import ORIGIN_FIELD
from edgescope.proxy.protocol import PENDING_HEADER, SET_HEADER, SITES_HEADER
from edgescope.proxy.server import SiteProxy
from edgescope.replicas.collapse import REPLICAS_FIELD
from edgescope.replicas.extension import Replicas
from edgescope.testbed.layout import SERVICE_TYPES

pytestmark = [pytest.mark.testbed, pytest.mark.slow]
SITES = ("Paris", "Corte")
BOTH = "{image: Paris & Corte}"
PREFIXES = {service_type: prefix for service_type, prefix in SERVICE_TYPES.values()}


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


class Pair:
    """Paris and Corte proxies (replicas on); a site can be stopped and restarted on its port."""

    def __init__(self, configs: dict[str, Path], state: Path) -> None:
        self.configs, self.state = configs, state
        self.ports = {site: _free_port() for site in SITES}
        self.proxies: dict[str, SiteProxy] = {}
        self.replicas: dict[str, Replicas] = {}

    async def start(self, site: str) -> SiteProxy:
        other = next(s for s in SITES if s != site)
        url = URL(f"http://127.0.0.1:{self.ports[other]}")
        theirs = load_config(self.configs[other]).private_key.public_key()
        peer = PeerConfig(other, url, 2.0, 120.0, public_keys=(theirs,))
        # plain HTTP on ports of their own: the testbed's proxies keep theirs (and their TLS,
        # and, behind HAProxy, their per-service listeners: here every service is a prefix)
        config = load_config(self.configs[site])
        services = tuple(
            dataclasses.replace(s, port=None, prefix=PREFIXES[s.type]) for s in config.services
        )
        config = dataclasses.replace(
            config, port=0, services=services, peers=(peer,), peer_listen=None, tls=None
        )
        replicas = Replicas.open(site, self.state / site, replay_interval=0.5)
        proxy = SiteProxy(config, extensions=[replicas])
        self.replicas[site] = replicas
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.ports[site]))
        await proxy.start(sockets={"main": sock})
        self.proxies[site] = proxy
        return proxy

    async def stop(self, site: str) -> None:
        await self.proxies.pop(site).stop()

    def registry(self, site: str) -> Any:
        return self.replicas[site].registry


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _token_request(auth: dict[str, str]) -> dict[str, Any]:
    return {
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


@pytest.fixture
async def pair(ctx: Context, tmp_path: Path) -> AsyncIterator[tuple[Pair, Client]]:
    state = ctx.testbed.clouds_yaml.parent
    configs = {site: state / "sites" / site / "etc" / "proxy.toml" for site in SITES}
    if not all(path.is_file() for path in configs.values()):
        pytest.skip(f"the testbed in {state} has no proxy.toml for {', '.join(SITES)}")
    sites = Pair(configs, tmp_path)
    for site in SITES:
        await sites.start(site)
    auth = yaml.safe_load(ctx.testbed.clouds_yaml.read_text())["clouds"][
        ctx.testbed.cloud_name("Paris", admin=True)
    ]["auth"]
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300))
    try:
        url = sites.proxies["Paris"].url
        async with session.post(
            url + "/identity/v3/auth/tokens", json=_token_request(auth)
        ) as response:
            assert response.status == 201, await response.text()
            token = response.headers["X-Subject-Token"]
        yield sites, Client(session, url, token)
    finally:
        await session.close()
        for site in list(sites.proxies):
            await sites.stop(site)


async def test_image_lifecycle_by_handle(pair: tuple[Pair, Client]) -> None:
    sites, client = pair
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
    records = {s: sites.registry(s).lookup(handle) for s in SITES}
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
        assert sites.registry(site).lookup(handle) is None
    status, _, _ = await client.call("GET", f"/image/v2/images/{corte_id}", "{image: Corte}")
    assert status == 404


async def test_eventual_create_reaches_corte_once_after_it_returns(
    pair: tuple[Pair, Client],
) -> None:
    sites, client = pair
    name = f"replica-ev-{uuid.uuid4().hex[:8]}"
    await sites.stop("Corte")  # Paris's peer port now refuses: Corte is cut off
    status, headers, image = await client.call(
        "POST",
        "/image/v2/images",
        BOTH,
        json={"name": name, "disk_format": "raw", "container_format": "bare"},
        headers={MODE_HEADER: "eventual"},
    )
    assert status == 201, image
    assert headers[PENDING_HEADER] == "Corte"
    handle = image["id"]
    assert [op.target for op in sites.registry("Paris").pending()] == ["Corte"]

    await sites.start("Corte")  # healed: the replayer sends the queued create
    deadline = asyncio.get_running_loop().time() + 60
    while sites.registry("Paris").pending():
        assert asyncio.get_running_loop().time() < deadline, "the create was not replayed"
        await asyncio.sleep(0.2)
    status, _, listed = await client.call("GET", f"/image/v2/images?name={name}", "{image: Corte}")
    assert status == 200
    [at_corte] = listed["images"]  # exactly once
    record = sites.registry("Paris").lookup(handle)
    assert record is not None and record.member_id("Corte") == at_corte["id"]
    assert await sites.replicas["Paris"].replayer.replay_once() == 0

    status, _, body = await client.call("DELETE", f"/image/v2/images/{handle}", BOTH)
    assert status == 204, body


async def test_boot_at_each_site_from_the_same_image_handle(pair: tuple[Pair, Client]) -> None:
    sites, client = pair
    status, _, image = await client.call(
        "POST",
        "/image/v2/images",
        BOTH,
        json={"name": f"replica-boot-{uuid.uuid4().hex[:8]}", "disk_format": "raw",
              "container_format": "bare"},
    )  # fmt: skip
    assert status == 201, image
    handle = image["id"]
    status, _, body = await client.call(
        "PUT",
        f"/image/v2/images/{handle}/file",
        BOTH,
        data=b"\0" * 4096,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert status == 204, body
    record = sites.registry("Paris").lookup(handle)
    booted = []
    try:
        for site in SITES:
            scope = f"{{compute: {site}, image: {site}}}"
            status, _, flavors = await client.call("GET", "/compute/v2.1/flavors", scope)
            assert status == 200, flavors
            flavor = next(f["id"] for f in flavors["flavors"] if f["name"] == "m1.tiny")
            status, _, server = await client.call(
                "POST",
                "/compute/v2.1/servers",
                scope,
                json={"server": {"name": f"replica-vm-{site}", "imageRef": handle,
                                 "flavorRef": flavor, "networks": "none"}},
                headers={"OpenStack-API-Version": "compute 2.37"},
            )  # fmt: skip
            assert status == 202, server
            booted.append((site, server["server"]["id"]))
            shown = await _wait_active(client, scope, server["server"]["id"])
            assert shown["image"]["id"] == record.member_id(site)  # that site's own copy
    finally:
        for site, server_id in booted:
            scope = f"{{compute: {site}}}"
            await client.call("DELETE", f"/compute/v2.1/servers/{server_id}", scope)
        await client.call("DELETE", f"/image/v2/images/{handle}", BOTH)


async def _wait_active(client: Client, scope: str, server_id: str) -> Any:
    deadline = asyncio.get_running_loop().time() + 180
    while True:
        status, _, body = await client.call("GET", f"/compute/v2.1/servers/{server_id}", scope)
        assert status == 200, body
        server = body["server"]
        if server["status"] == "ACTIVE":
            return server
        assert server["status"] != "ERROR", server.get("fault")
        assert asyncio.get_running_loop().time() < deadline, f"{server_id} is {server['status']}"
        await asyncio.sleep(1)


async def test_concurrent_renames_on_both_sides_converge_to_the_last_writer(
    pair: tuple[Pair, Client],
) -> None:
    sites, paris = pair
    status, _, image = await paris.call(
        "POST",
        "/image/v2/images",
        BOTH,
        json={"name": f"replica-lww-{uuid.uuid4().hex[:8]}", "disk_format": "raw",
              "container_format": "bare"},
    )  # fmt: skip
    assert status == 201, image
    handle = image["id"]
    both = "{image: Paris & Corte, identity: Paris}"  # the token is Paris's, whoever fans out
    patch = {
        "Content-Type": "application/openstack-images-v2.1-json-patch",
        MODE_HEADER: "eventual",
    }

    def rename(name: str) -> list[dict[str, str]]:
        return [{"op": "replace", "path": "/name", "value": name}]

    await sites.stop("Corte")
    status, headers, _ = await paris.call(
        "PATCH", f"/image/v2/images/{handle}", both, json=rename("from-paris"), headers=patch
    )
    assert status == 200 and headers[PENDING_HEADER] == "Corte"
    await sites.stop("Paris")  # its queue is on disk; now Corte is up and Paris is cut
    corte_proxy = await sites.start("Corte")
    corte = Client(paris.session, corte_proxy.url, paris.token)
    status, headers, _ = await corte.call(
        "PATCH", f"/image/v2/images/{handle}", both, json=rename("from-corte"), headers=patch
    )
    assert status == 200 and headers[PENDING_HEADER] == "Paris"

    paris_proxy = await sites.start("Paris")  # healed: both queues replay
    paris.url = paris_proxy.url
    deadline = asyncio.get_running_loop().time() + 60
    while sites.registry("Paris").pending() or sites.registry("Corte").pending():
        assert asyncio.get_running_loop().time() < deadline, "the queues did not drain"
        await asyncio.sleep(0.2)
    names = {}
    for site in SITES:
        status, _, shown = await paris.call(
            "GET", f"/image/v2/images/{handle}", f"{{image: {site}}}"
        )
        assert status == 200, shown
        names[site] = shown["name"]
    assert names == {"Paris": "from-corte", "Corte": "from-corte"}  # the later write wins
    [lost] = sites.registry("Paris").pending(include_done=True)
    assert lost.state == "superseded"
    await paris.call("DELETE", f"/image/v2/images/{handle}", BOTH)


async def test_strict_create_with_corte_cut_reports_each_site(pair: tuple[Pair, Client]) -> None:
    sites, client = pair
    name = f"replica-strict-{uuid.uuid4().hex[:8]}"
    await sites.stop("Corte")
    status, headers, body = await client.call(
        "POST",
        "/image/v2/images",
        BOTH,
        json={"name": name, "disk_format": "raw", "container_format": "bare"},
    )
    assert status == 503, body
    assert headers[SITES_HEADER] == "Paris=201, Corte=unreachable"
    assert {s["site"]: s["ok"] for s in body["error"]["sites"]} == {"Paris": True, "Corte": False}
    assert "undone: Paris: " in body["error"]["message"]  # all or nothing
    assert sites.registry("Paris").sets() == [] and sites.registry("Paris").pending() == []
    status, _, listed = await client.call("GET", f"/image/v2/images?name={name}", "{image: Paris}")
    assert listed["images"] == []  # Paris's image was deleted again
