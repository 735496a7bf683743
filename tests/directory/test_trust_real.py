"""Issue 20's findings 3, 4, 5 and 12, attacked through a real ``edgescope proxy run``.

Corte runs as its operator would run it, with the site directory and gossip turned on
(``[trust] learned = ["route", "directory"]``) and no other trust written. The attacker is a
*malicious peer*: this test, holding a site's real key, signing correctly whatever it wants
to send (an endorsed newcomer, Evil; a configured peer, Marseille; Paris's old key).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import sitekeys
from edgescope.directory import model
from edgescope.directory.gossip import MAX_OFFER_ENTRIES, sign_sync
from edgescope.proxy import keys
from edgescope.proxy.protocol import (
    IDEMPOTENCY_KEY_HEADER,
    REPLICA_HEADER,
    TOKEN_SITE_HEADER,
    sign_hop,
)
from loopback import proxy_fixtures, reserve_port

AUTHORITY = keys.generate()
SYNC = "/edgescope/directory/sync"


def key_of(site: str) -> keys.Ed25519PrivateKey:
    return keys.load_private(sitekeys.private(site))


def cert(site: str, key: keys.Ed25519PrivateKey) -> model.Endorsement:
    return model.endorse(AUTHORITY, site, key.public_key(), expires=time.time() + 3600)


def entry(
    key: keys.Ed25519PrivateKey,
    site: str,
    version: int,
    url: str = "http://127.0.0.1:9",
    *,
    previous: keys.Ed25519PrivateKey | None = None,
) -> dict[str, Any]:
    """An entry signed by ``key`` as the site's: whatever its version (no bound here)."""
    handover = ""
    if previous is not None:
        body = model.handover_body(site, keys.public_text(key.public_key()))
        handover = base64.b64encode(previous.sign(model.canonical(body))).decode()
    unsigned = model.Entry(site, url, ("image",), version, "up", cert(site, key), handover=handover)
    signature = base64.b64encode(key.sign(model.canonical(unsigned.body()))).decode()
    return {**unsigned.body(), "signature": signature}


@dataclass
class Corte:
    url: str
    peer_url: str
    log: Path
    seen: list[dict[str, Any]]
    session: aiohttp.ClientSession

    async def offer(
        self, doc: Any, *, sender: str, data: bytes | None = None, url: str | None = None
    ) -> tuple[int, Any]:
        """A directory sync signed by ``sender``'s own key (a correctly signed peer)."""
        body = data if data is not None else json.dumps(doc).encode()
        headers = {"Content-Type": "application/json", **sign_sync(key_of(sender), sender, body)}
        async with self.session.post(
            (url or self.peer_url) + SYNC, data=body, headers=headers
        ) as r:
            return r.status, await r.json(content_type=None)

    async def hop(
        self, sender: str, method: str, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """A signed hop from ``sender`` to Corte's peer listener."""
        signed = sign_hop(
            key_of(sender), method, path, sender, "Corte", 1, now=time.time(),
            headers=headers, body=b"{}" if method == "POST" else None,
        )  # fmt: skip
        out = {**(headers or {}), **signed, "Content-Type": "application/json"}
        data = b"{}" if method == "POST" else None
        async with self.session.request(method, self.peer_url + path, data=data, headers=out) as r:
            return r.status, await r.json(content_type=None)

    async def directory(self) -> dict[str, Any]:
        async with self.session.get(self.url + "/edgescope/directory") as answer:
            doc = await answer.json()
        return {e["site"]: e for e in doc["entries"]}

    def log_lines(self, fragment: str) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if fragment in line]


def corte_toml(tmp: Path, port: int, peer_port: int, backend: str) -> str:
    endorsement = tmp / "corte.endorsement"
    endorsement.write_text(model.canonical(cert("Corte", key_of("Corte")).to_json()).decode())
    return f"""
site = "Corte"
listen = "127.0.0.1:{port}"
peer_listen = "127.0.0.1:{peer_port}"
private_key = "{sitekeys.private("Corte")}"

[[services]]
type = "identity"
prefix = "/identity"
backend = "{backend}/identity"

[[services]]
type = "image"
prefix = "/image"
backend = "{backend}/image"

[[peers]]
name = "Marseille"
url = "http://127.0.0.1:9"
public_key = "{sitekeys.public("Marseille")}"

[breaker]
probe_interval = 0

[identity]
auth_url = "{backend}/identity/v3"
username = "edgescope"
password = "pw"
project = "service"

[trust]
learned = ["route", "directory"]   # gossip on; nothing else written

[replicas]
state_dir = "{tmp / "replicas"}"

[directory]
state_dir = "{tmp / "directory"}"
url = "http://127.0.0.1:{peer_port}"
endorsement_file = "{endorsement}"
authorities = ["{keys.public_text(AUTHORITY.public_key())}"]
gossip_interval = 0
"""


@pytest.fixture
async def corte(tmp_path: Path) -> AsyncIterator[Corte]:
    seen: list[dict[str, Any]] = []
    runner = web.AppRunner(proxy_fixtures().backend_app("Corte", seen), access_log=None)
    await runner.setup()
    backend_sock = reserve_port()
    await web.SockSite(runner, backend_sock).start()
    backend = f"http://127.0.0.1:{backend_sock.getsockname()[1]}"
    main, peer = reserve_port(), reserve_port()
    port, peer_port = main.getsockname()[1], peer.getsockname()[1]
    config = tmp_path / "corte.toml"
    config.write_text(corte_toml(tmp_path, port, peer_port, backend))
    log = tmp_path / "corte.log"  # its log lines go to stdout
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from edgescope.cli import main; main()",
            "proxy", "run", "--config", str(config), "--log-level", "INFO",
            stdout=out, stderr=out, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    for _ in range(1200):  # until it says it started (or it exits)
        if '"started"' in log.read_text() or process.returncode is not None:
            break
        await asyncio.sleep(0.1)
    assert '"started"' in log.read_text(), log.read_text()
    session = aiohttp.ClientSession()
    try:
        yield Corte(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{peer_port}", log, seen, session)
    finally:
        await session.close()
        process.terminate()
        await process.wait()
        await runner.cleanup()
        for sock in (backend_sock, main, peer):
            sock.close()
    assert "Traceback" not in log.read_text()  # whatever the attacker sent


async def test_a_directory_endorsed_newcomer_routes_but_never_administers(corte: Corte) -> None:
    """Finding 3: an endorsed site is learned, may route, and is never acted for."""
    status, answer = await corte.offer({"from": "Evil", "fingerprint": "x",
                                        "self": entry(key_of("Evil"), "Evil", 1)},
                                       sender="Evil")  # fmt: skip
    assert status == 200, answer
    assert "Evil" in await corte.directory()
    status, answer = await corte.hop("Evil", "GET", "/edgescope/svc/image/x")
    assert status == 200 and answer["site"] == "Corte"  # learned: it may route
    admin = {"X-Auth-Token": "evil-admin-token", TOKEN_SITE_HEADER: "Evil"}
    status, answer = await corte.hop("Evil", "POST", "/edgescope/svc/identity/v3/users", admin)
    assert status == 403, answer
    assert "delegates no role to Evil's users" in answer["error"]["message"]
    assert not [r for r in corte.seen if "/v3/users" in r.get("path", "")]
    assert not [  # Corte's service token never went to its Keystone for Evil
        r for r in corte.seen
        if r.get("headers", {}).get("X-Auth-Token") == "service-token-of-Corte"
    ]  # fmt: skip
    status, answer = await corte.hop("Evil", "POST", "/edgescope/replicas/sets")
    assert status == 403 and "may not use 'replicas'" in answer["error"]["message"]
    marked = {REPLICA_HEADER: "rs-1", IDEMPOTENCY_KEY_HEADER: "k"}  # a replicated write
    status, answer = await corte.hop("Evil", "POST", "/edgescope/svc/image/x", marked)
    assert status == 403 and "may not use 'replicas'" in answer["error"]["message"]
    status, answer = await corte.hop("Evil", "GET", "/edgescope/replicas")
    assert status == 401 and "sets" not in answer  # not a peer for this: an operator's token


async def test_directory_syncs_come_from_authenticated_peers_on_the_peer_listener(
    corte: Corte,
) -> None:
    """Finding 4: no anonymous sync, none on the client listener, bounded offers, one log
    line per sync whatever it carried."""
    for url in (corte.url, corte.peer_url):
        async with corte.session.post(url + SYNC, json={"fingerprint": "x"}) as answer:
            assert answer.status == 403  # anonymous
    big = {"fingerprint": "x", "padding": "x" * 70_000}  # a stranger may send a hello only
    status, answer = await corte.offer(big, sender="Nobody")
    assert status == 413 and "from a site not known here" in answer["error"]
    status, answer = await corte.offer({"fingerprint": "x"}, sender="Nobody")
    assert status == 403 and "not a peer of" in answer["error"]  # no endorsed entry of its own
    status, answer = await corte.offer({"fingerprint": "x"}, sender="Marseille", url=corte.url)
    assert status == 403 and "peer listener only" in answer["error"]
    bogus = entry(key_of("Lyon"), "Lyon", 1)
    too_many = {"entries": [bogus] * (MAX_OFFER_ENTRIES + 1)}
    status, answer = await corte.offer(too_many, sender="Marseille")
    assert status == 413 and f"at most {MAX_OFFER_ENTRIES}" in answer["error"]
    flood = []  # each a distinct site, correctly shaped, its signature wrong
    for i in range(1500):
        doc = entry(key_of("Lyon"), f"Site{i}", 1)
        flood.append({**doc, "signature": base64.b64encode(b"x" * 64).decode()})
    status, answer = await corte.offer({"entries": flood}, sender="Marseille")
    assert status == 200, answer
    async with corte.session.get(corte.url + "/edgescope/health") as health:
        assert health.status == 200
    lines = corte.log_lines("directory sync with")
    assert len(lines) == 1 and "0 admitted" in lines[0] and "1500 refused" in lines[0], (
        corte.log.read_text()[-3000:]
    )
    assert len(corte.log_lines("Site1")) <= 1  # no line per entry
    assert not [s for s in await corte.directory() if s.startswith("Site")]


async def test_an_old_unrevoked_key_cannot_take_a_sites_entry_over(corte: Corte) -> None:
    """Finding 5: only the key Corte holds for Paris (or a handover it signed) moves
    Paris's entry; versions are bounded; ``Infinity`` is a clean 400."""
    old, current, new = key_of("Paris-old"), key_of("Paris"), key_of("Paris-new")
    status, _ = await corte.offer(
        {"entries": [entry(current, "Paris", 10, "http://paris")]}, sender="Marseille"
    )
    assert status == 200 and (await corte.directory())["Paris"]["url"] == "http://paris"
    takeover = entry(old, "Paris", 2**52, "http://attacker")  # endorsed, never revoked
    status, _ = await corte.offer({"entries": [takeover]}, sender="Marseille")
    assert status == 200
    held = (await corte.directory())["Paris"]
    assert held["url"] == "http://paris" and held["version"] == 10
    assert "signed with another key" in corte.log_lines("directory sync with")[-1]
    status, _ = await corte.offer(  # the real Paris republishes: it wins
        {"entries": [entry(current, "Paris", 11, "http://paris-2")]}, sender="Marseille"
    )
    assert (await corte.directory())["Paris"]["url"] == "http://paris-2"
    status, _ = await corte.offer(  # even the right key may not pass 2^53
        {"entries": [entry(current, "Paris", 2**62, "http://paris-3")]}, sender="Marseille"
    )
    assert status == 200 and (await corte.directory())["Paris"]["version"] == 11
    assert "is not an integer from 0 to 2^53" in corte.log_lines("directory sync with")[-1]
    rotated = entry(new, "Paris", 12, "http://paris-new", previous=current)
    status, _ = await corte.offer({"entries": [rotated]}, sender="Marseille")
    assert (await corte.directory())["Paris"]["url"] == "http://paris-new"  # handed over
    status, _ = await corte.offer(  # from then on the previous key is the old one
        {"entries": [entry(current, "Paris", 99, "http://paris-back")]}, sender="Marseille"
    )
    assert (await corte.directory())["Paris"]["url"] == "http://paris-new"
    raw = json.dumps({"entries": [entry(new, "Paris", 13)]}).replace(
        '"version": 13', '"version": Infinity'
    )
    status, answer = await corte.offer(None, sender="Marseille", data=raw.encode())
    assert status == 400 and "non-finite number Infinity" in answer["error"]


@pytest.mark.parametrize(
    "text",
    [
        '{"fingerprint": NaN}',
        '{"versions": {"Paris": -Infinity}, "entries": []}',
        '{"entries": [{"endorsement": {"expires": 1e999}}]}',
        '{"revocations": [{"revoke": "Paris", "key": Infinity}]}',
        "[NaN]",
    ],
)
async def test_non_finite_numbers_in_directory_documents_are_a_clean_400(
    corte: Corte, text: str
) -> None:
    """Finding 12: anywhere in an offer, and at the revocation endpoint."""
    status, answer = await corte.offer(None, sender="Marseille", data=text.encode())
    assert status == 400 and ("non-finite" in answer["error"] or "out of range" in answer["error"])
    async with corte.session.post(
        corte.url + "/edgescope/directory/revoke",
        data=text.encode(),
        headers={"Content-Type": "application/json"},
    ) as revoke:
        assert revoke.status == 400
