"""Issue 20's replica findings, tried again as the attacker did: real ``edgescope proxy run``
processes (Paris, Corte) with the generic backends of the replica tests, and a malicious
peer "Evil" that Paris's config names (its key is real, its requests are signed) and that
sends anything.

1. a non-member lists, pushes over, deletes or reroutes another site's sets;
2. one pushed clock stamp (counter 999999999) breaks every later write and the restart;
6. the eventual-write queue grows without bound;
9. a chunked ``&`` create is never id-translated, a created id takes over another set.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import sitekeys
from edgescope.proxy.carriers import MODE_HEADER
from edgescope.proxy.config_file import render_config
from edgescope.proxy.protocol import REPLICA_SETS_PATH, REPLICAS_PATH
from loopback import reserve_port
from replicas.conftest import bound_socket, resource_app
from replicas.evilpeer import EvilPeer

pytestmark = pytest.mark.slow
BOTH = "{image: Paris & Corte}"
START_TIMEOUT = 240.0
"""Seconds a proxy process may take to say it started (imports are slow on a loaded host)."""


def site_toml(site: str, port: int, backend: str, peers: dict[str, str], state: Path) -> str:
    return render_config(
        {
            "site": site,
            "listen": f"127.0.0.1:{port}",
            "private_key": sitekeys.private(site),
            "services": [{"type": "image", "prefix": "/image", "backend": f"{backend}/image"}],
            "peers": [
                {
                    "name": name,
                    "url": url,
                    "public_key": sitekeys.public(name),
                    "connect_timeout": 0.5,
                    "read_timeout": 5.0,
                }
                for name, url in peers.items()
            ],
            "breaker": {"probe_interval": 0, "open_seconds": 0.2},
            "identity": {
                "auth_url": f"{backend}/identity/v3",
                "username": "edgescope",
                "password": "pw",
                "project": "service",
            },
            "replicas": {
                "state_dir": str(state),
                "replay_interval": 0.2,
                "queue_max_ops": 3,
                "queue_owner_share": 1.0,
            },
        }
    )


@dataclass
class Proc:
    name: str
    config: Path
    state: Path
    port: int
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: list[tuple[str, str]] = field(default_factory=list)
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        with self.config.with_suffix(".log").open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "from edgescope.cli import main; main()",
                "proxy", "run", "--config", str(self.config), "--log-level", "WARNING",
                stdout=asyncio.subprocess.PIPE, stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), START_TIMEOUT)
        assert b'"started"' in line, (line, self.config.with_suffix(".log").read_text()[-3000:])

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()

    async def call(
        self, method: str, path: str, scope: str | None = BOTH, **kwargs: Any
    ) -> tuple[int, Any]:
        headers = {"X-Auth-Token": "alice", **kwargs.pop("headers", {})}
        if scope is not None:
            headers["X-Scope"] = scope
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.url + path, headers=headers, **kwargs) as response,
        ):
            raw = await response.read()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw.decode(errors="replace")


@dataclass
class World:
    paris: Proc
    corte: Proc
    evil: EvilPeer


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """Paris and Corte as processes; Evil is a peer of Paris (and Paris of nobody else)."""
    held = {n: reserve_port() for n in ("Paris", "Corte")}
    ports = {n: int(s.getsockname()[1]) for n, s in held.items()}
    procs = {n: Proc(n, tmp_path / f"{n}.toml", tmp_path / n, ports[n]) for n in held}
    evil = EvilPeer("Evil", "Paris", procs["Paris"].url)
    await evil.serve()
    runners = []
    for name, proc in procs.items():
        runner = web.AppRunner(resource_app(name, proc.items, proc.seen), access_log=None)
        await runner.setup()
        sock = bound_socket()
        await web.SockSite(runner, sock).start()
        runners.append(runner)
        other = "Corte" if name == "Paris" else "Paris"
        peers = {other: procs[other].url} | ({"Evil": evil.url} if name == "Paris" else {})
        backend = f"http://127.0.0.1:{sock.getsockname()[1]}"
        proc.config.write_text(site_toml(name, proc.port, backend, peers, proc.state))
    await asyncio.gather(*(p.start() for p in procs.values()))
    try:
        yield World(procs["Paris"], procs["Corte"], evil)
    finally:
        for proc in procs.values():
            await proc.stop()
        await evil.close()
        for runner in runners:
            await runner.cleanup()
        for sock in held.values():
            sock.close()


async def make_set(world: World) -> tuple[str, str, str]:
    """A set that ``&`` made: (handle, Paris's id, Corte's id)."""
    status, body = await world.paris.call("POST", "/image/things", json={"thing": {"n": 1}})
    assert status == 201, body
    [corte_id] = world.corte.items
    return body["thing"]["id"], body["thing"]["id"], corte_id


def record(handle: str, members: list[tuple[str, str | None]], version: str | None = None) -> Any:
    return {
        "handle": handle,
        "service": "image",
        "collection": "/things",
        "members": [{"site": s, "id": i, "state": "present"} for s, i in members],
        "version": version,
    }


def stamp(ahead: float, counter: int) -> str:
    return f"{int((time.time() + ahead) * 1000):013d}.{counter:06d}.Evil"


async def test_a_peer_acts_on_the_sets_it_is_a_member_of_only(world: World) -> None:
    """Finding 1, each of the attacker's four moves, then the victim's set is intact."""
    paris, evil = world.paris, world.evil
    handle, paris_id, corte_id = await make_set(world)

    status, doc = await evil.send("GET", REPLICAS_PATH)
    assert status == 200 and doc["sets"] == [] and handle not in json.dumps(doc)

    taken = record("7e1000000001", [("Evil", "7e1000000001"), ("Paris", paris_id)])
    status, doc = await evil.send("POST", REPLICA_SETS_PATH, json_doc={"set": taken})
    assert status == 409 and "already belong to another set" in doc["error"]["message"]

    for members in ([("Paris", paris_id), ("Corte", corte_id)], [("Evil", "e10000000001"), *[]]):
        status, doc = await evil.send(
            "POST", REPLICA_SETS_PATH, json_doc={"delete": record(handle, members)}
        )
        assert status in (400, 403), doc
    joined = record(handle, [("Paris", paris_id), ("Corte", corte_id), ("Evil", "e10000000001")])
    status, doc = await evil.send("POST", REPLICA_SETS_PATH, json_doc={"delete": joined})
    assert status == 403 and "not a member of set" in doc["error"]["message"]

    empty = record(handle, [])
    status, doc = await evil.send("POST", REPLICA_SETS_PATH, json_doc={"set": empty})
    assert status == 400, doc  # an empty member list is refused, never a skipped check

    for word in ("detail", "action", "v2.1", "os-volumes", "../x"):
        hijack = record("e20000000002", [("Evil", "e20000000002"), ("Paris", word)])
        status, doc = await evil.send("POST", REPLICA_SETS_PATH, json_doc={"set": hijack})
        assert status == 400 and "not a replica id" in doc["error"]["message"], (word, doc)

    status, body = await paris.call("GET", "/image/things/detail", scope=None)
    assert status == 404 and ("GET", "/image/things/detail") in world.paris.seen
    status, body = await paris.call("GET", f"/image/things/{handle}")  # still one resource
    assert status == 200 and body["thing"]["id"] == handle
    status, doc = await paris.call(
        "GET", REPLICAS_PATH, scope=None, headers={"X-Auth-Token": "admin-token"}
    )
    assert status == 200 and [s["handle"] for s in doc["sets"]] == [handle]


async def test_a_member_answer_that_takes_another_sets_id_is_undone(world: World) -> None:
    """Finding 9: ids a create answered with never take over another set's record."""
    paris, evil = world.paris, world.evil
    handle, paris_id, corte_id = await make_set(world)
    evil.answers["POST"] = (201, {"thing": {"id": corte_id}})
    evil.answers["DELETE"] = (204, {})
    status, doc = await paris.call(
        "POST", "/image/things", scope="{image: Paris & Evil}", json={"thing": {"n": 2}}
    )
    assert status == 409 and "already belong to another set" in doc["error"]["message"], doc
    assert "undone" in doc["error"]["message"]
    assert ("DELETE", f"/edgescope/svc/image/things/{corte_id}") in evil.received
    assert list(paris.items) == [paris_id]  # Paris's new member was deleted again
    status, body = await paris.call("GET", f"/image/things/{handle}")
    assert status == 200 and body["thing"]["id"] == handle

    async def chunked() -> AsyncIterator[bytes]:
        yield json.dumps({"thing": {"friend": handle}}).encode()

    status, doc = await paris.call(
        "POST", "/image/things", data=chunked(), headers={"Content-Type": "application/json"}
    )
    assert status == 411 and "Content-Length" in doc["error"]["message"]


async def test_a_pushed_stamp_cannot_break_the_site(world: World) -> None:
    """Finding 2: bounded stamps; writes, deletes and a restart still work after them."""
    paris, evil = world.paris, world.evil
    handle, paris_id, _ = await make_set(world)
    bad = record(
        "e30000000003",
        [("Evil", "e30000000003"), ("Paris", "a30000000003")],
        stamp(290, 999_999_999),
    )
    status, doc = await evil.send("POST", REPLICA_SETS_PATH, json_doc={"set": bad})
    assert status == 400 and "out of range" in doc["error"]["message"], doc
    far = record(
        "e40000000004", [("Evil", "e40000000004"), ("Paris", "a40000000004")], stamp(3600, 0)
    )
    status, doc = await evil.send("POST", REPLICA_SETS_PATH, json_doc={"set": far})
    assert status == 400 and "ahead" in doc["error"]["message"], doc
    edge = record(
        "e50000000005", [("Evil", "e50000000005"), ("Paris", "a50000000005")], stamp(290, 999_999)
    )
    status, doc = await evil.send("POST", REPLICA_SETS_PATH, json_doc={"set": edge})
    assert status == 200 and doc["stored"], doc  # the greatest counter: accepted, harmless

    status, body = await paris.call("PATCH", f"/image/things/{handle}", json={"thing": {"v": 1}})
    assert status == 200, body
    status, body = await paris.call("DELETE", f"/image/things/{paris_id}", scope="{image: Paris}")
    assert status == 204, body
    await paris.stop()
    await paris.start()  # the registry loads: every stored stamp parses
    status, body = await paris.call(
        "PATCH", f"/image/things/{handle}", scope="{image: Corte}", json={"thing": {"v": 2}}
    )
    assert status == 200, body
    assert [item["v"] for item in world.corte.items.values()] == [2]


async def test_a_bad_stored_row_is_quarantined_and_the_proxy_starts(world: World) -> None:
    """Finding 2: a row its parser refuses (written by an older proxy) does not stop a start."""
    paris = world.paris
    handle, _, _ = await make_set(world)
    await paris.stop()
    rows = [
        ("bad-1", "not json"),
        (
            "e60000000006",
            json.dumps(
                record(
                    "e60000000006",
                    [("Paris", "e60000000006"), ("Corte", "c60000000006")],
                    "1.999999999.X",
                )
            ),
        ),
        (
            "e70000000007",
            json.dumps(record("e70000000007", [("Paris", "detail"), ("Corte", "e70000000007")])),
        ),
    ]
    with contextlib.closing(sqlite3.connect(paris.state / "replicas.sqlite3")) as db:
        db.executemany("INSERT INTO sets (handle, record, changed) VALUES (?, ?, 0)", rows)
        db.commit()
    await paris.start()
    status, doc = await paris.call(
        "GET", REPLICAS_PATH, scope=None, headers={"X-Auth-Token": "admin-token"}
    )
    assert status == 200 and [s["handle"] for s in doc["sets"]] == [handle]
    assert sorted(q["name"] for q in doc["quarantine"]) == ["bad-1", "e60000000006", "e70000000007"]
    status, text = await paris.call("GET", "/metrics", scope=None)
    assert "edgescope_replica_quarantined_total 3.0" in text
    status, _ = await paris.call("GET", "/image/things/detail", scope=None)
    assert status == 404 and ("GET", "/image/things/detail") in paris.seen  # not rerouted


async def test_the_eventual_queue_is_bounded(world: World) -> None:
    """Finding 6: past queue_max_ops (3 here) an eventual write is refused with 507."""
    paris, corte = world.paris, world.corte
    handle, _, _ = await make_set(world)
    await corte.stop()
    eventual = {MODE_HEADER: "eventual"}
    for v in range(3):
        status, body = await paris.call(
            "PATCH", f"/image/things/{handle}", json={"thing": {"v": v}}, headers=eventual
        )
        assert status == 200, body
    status, body = await paris.call(
        "PATCH", f"/image/things/{handle}", json={"thing": {"v": 9}}, headers=eventual
    )
    assert status == 507 and "queue_max_ops is 3" in body["error"]["message"], body
    _, text = await paris.call("GET", "/metrics", scope=None)
    assert "edgescope_replica_queue_writes 3.0" in text
    assert "edgescope_replica_queue_full_total 1.0" in text
