"""Spread the site directory proxy to proxy (push-pull anti-entropy), as a proxy extension.

Every ``gossip_interval`` seconds a proxy picks ``fanout`` sites at random among those it
knows (its seeds while it knows none) and syncs with each: it sends the hash of its directory
(a few bytes, whatever the size of the edge); the other side answers ``same`` -- the steady
state -- or its versions; then the first side pushes what the other lacks with its own
versions, and gets back what it lacks itself. Entries carry their own
signatures (:mod:`model`), so the sync endpoint needs no hop marker: anyone may offer entries,
only admitted ones are kept. Admitted sites become peers of the proxy (its
:class:`~edgescope.proxy.peerbook.PeerBook`); a site that left is forgotten. The directory is
kept in ``<state_dir>/directory.json``, so a restarted or partitioned proxy keeps its last one.

    [directory]
    state_dir = "/var/lib/edgescope/Paris"
    url = "https://10.66.0.1:20191"          # how peers reach this site (its peer listener)
    endorsement_file = "paris.endorsement"   # edgescope directory endorse ...
    authorities = ["ed25519:..."]            # whose endorsements this site trusts
    seeds = ["https://10.66.0.2:20291"]      # one known peer is enough
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from edgescope.aio import spawn
from edgescope.directory import model
from edgescope.directory.model import Entry, Refused
from edgescope.errors import ConfigError, SiteUnreachable
from edgescope.proxy.call import Call
from edgescope.proxy.config import PeerConfig
from edgescope.proxy.extension import CallHooks, ProxyServices
from edgescope.proxy.keys import Ed25519PrivateKey, Ed25519PublicKey, key_id, load_public
from edgescope.proxy.protocol import DIRECTORY_PATH, DIRECTORY_SYNC_PATH
from edgescope.proxy.route import Plan

log = logging.getLogger("edgescope.directory")
MAX_SYNC_BYTES = 4 * 1024 * 1024
MAX_SYNC_ENTRIES = 20_000
SYNC_TIMEOUT = 5.0
SAVE_INTERVAL = 60.0
AVOID = 30.0
"""Seconds a site that did not answer a sync is left out of the choice of sync partners."""


@dataclass(frozen=True, slots=True)
class DirectoryConfig:
    """The ``[directory]`` table of a site's proxy config."""

    state_dir: Path
    url: str
    endorsement_file: Path
    authorities: tuple[Ed25519PublicKey, ...]
    seeds: tuple[str, ...] = ()
    gossip_interval: float = 2.0
    fanout: int = 3
    region: str = ""

    @classmethod
    def parse(cls, raw: Mapping[str, Any], base_dir: Path | None = None) -> DirectoryConfig:
        keys = {"state_dir", "url", "endorsement_file", "authorities", "seeds",
                "gossip_interval", "fanout", "region"}  # fmt: skip
        unknown = sorted(set(raw) - keys)
        if unknown:
            raise ConfigError(f"[directory]: unknown key {unknown[0]!r}; valid keys: "
                              f"{', '.join(sorted(keys))}")  # fmt: skip
        for key in ("state_dir", "url", "endorsement_file"):
            if not isinstance(raw.get(key), str) or not raw[key]:
                raise ConfigError(f"[directory]: missing '{key}'")
        authorities = raw.get("authorities")
        if not isinstance(authorities, list) or not authorities:
            raise ConfigError("[directory]: 'authorities' must list the trusted keys")
        seeds = raw.get("seeds", [])
        if not isinstance(seeds, list) or not all(isinstance(s, str) for s in seeds):
            raise ConfigError("[directory]: 'seeds' must be a list of peer URLs")
        return cls(
            _path(raw["state_dir"], base_dir),
            raw["url"],
            _path(raw["endorsement_file"], base_dir),
            tuple(load_public(str(a)) for a in authorities),
            tuple(seeds),
            float(raw.get("gossip_interval", 2.0)),
            int(raw.get("fanout", 3)),
            str(raw.get("region", "")),
        )


class Directory:
    """The site directory of one proxy: admitted entries, gossip, and the peers they make."""

    name = "directory"

    def __init__(
        self,
        site: str,
        key: Ed25519PrivateKey,
        config: DirectoryConfig,
        services: Sequence[str],
    ) -> None:
        self.site = site
        self.key = key
        self.config = config
        self.services = tuple(services)
        self.entries: dict[str, Entry] = {}
        self.revoked: set[tuple[str, str]] = set()
        self.revocations: list[model.Revocation] = []
        self.syncs = 0
        """Syncs this proxy started (what ``bench/scale.py`` counts)."""
        self.exchanges = 0
        """Those of them that found a difference (versions and entries exchanged)."""
        self.unanswered: dict[str, int] = {}
        """Syncs that got no answer, by reason (``bench/scale.py`` reports them)."""
        self._fingerprint: str | None = None
        self._endorsed: set[model.Endorsement] = set()
        self._dirty = False
        self._saved_at = 0.0
        self._silent: dict[str, float] = {}
        """When each site URL last failed to answer a sync."""
        self._proxy: ProxyServices | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._file = config.state_dir / "directory.json"

    # -- Extension ------------------------------------------------------------------------

    def routes(self) -> Sequence[web.RouteDef]:
        return [web.post(DIRECTORY_SYNC_PATH, self._sync), web.get(DIRECTORY_PATH, self._list)]

    async def start(self, proxy: ProxyServices) -> None:
        self._proxy = proxy
        self.load()
        self.publish()
        if self.config.gossip_interval > 0:
            self._task = spawn(self._loop(), name=f"edgescope-gossip-{self.site}")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._save()

    def wants_body(self, call: Call, plan: Plan) -> bool:
        return False

    def join(self, call: Call, plan: Plan, body: bytes | None) -> CallHooks | None:
        return None

    # -- this site's own entry -----------------------------------------------------------

    def publish(self, state: str = "up") -> Entry:
        """Sign this site's entry anew (a higher version) and keep it."""
        endorsement = _load_endorsement(self.config.endorsement_file)
        current = self.entries.get(self.site)
        version = max(time.time_ns() // 1_000_000, (current.version + 1) if current else 0)
        entry = model.advertise(
            self.key,
            endorsement,
            self.config.url,
            self.services,
            version=version,
            state=state,
            region=self.config.region,
        )
        try:
            self.entries[self.site] = model.admit(
                entry, self.config.authorities, now=time.time(), revoked=frozenset(self.revoked)
            )
        except Refused as exc:
            raise ConfigError(f"[directory]: this site's own entry is not admitted: {exc}") from exc
        self._changed()
        self._save()
        return entry

    async def leave(self) -> None:
        """Tell the edge this site leaves: an entry saying so, pushed to a few peers now
        (another round when none answered, three at most)."""
        self.publish("left")
        for _ in range(3):
            if await self.gossip_round():
                return

    # -- gossip ---------------------------------------------------------------------------

    async def _loop(self) -> None:
        """A round every ``gossip_interval``, on time: a round still waiting for a cut peer
        does not hold the next one back (at most two rounds in flight)."""
        rounds: set[asyncio.Task[int]] = set()
        try:
            while not self._stopping.is_set():
                try:
                    await asyncio.wait_for(self._stopping.wait(), self.config.gossip_interval)
                except TimeoutError:
                    if len(rounds) < 2:
                        task = spawn(self._round_logged())
                        rounds.add(task)
                        task.add_done_callback(rounds.discard)
                    if self._dirty and time.monotonic() - self._saved_at >= SAVE_INTERVAL:
                        self._save()  # a crash loses at most SAVE_INTERVAL seconds of news
        finally:
            for task in rounds:
                task.cancel()
            await asyncio.gather(*rounds, return_exceptions=True)

    async def _round_logged(self) -> int:
        try:
            return await self.gossip_round()
        except Exception:  # one bad round must not stop the gossip
            log.exception("gossip round failed")
            return 0

    def partner_urls(self) -> list[str]:
        """Every site this one could sync with: the known sites that are up, and its seeds."""
        known = [e.url for s, e in self.entries.items() if s != self.site and e.state == "up"]
        return list(dict.fromkeys([*known, *self.config.seeds]))

    async def gossip_round(self) -> int:
        """Sync with up to ``fanout`` known sites (or the seeds); returns how many answered.
        Sites that did not answer lately are left out while others can be asked."""
        now = time.monotonic()
        known = [e.url for s, e in self.entries.items() if s != self.site and e.state == "up"]
        answering = [url for url in known if now - self._silent.get(url, -AVOID) >= AVOID]
        pool = answering if len(answering) >= self.config.fanout else known
        targets = random.sample(pool, min(self.config.fanout, len(pool))) if pool else []
        if len(known) < self.config.fanout:
            targets += [s for s in self.config.seeds if s not in targets]
        results = await asyncio.gather(*(self.sync_with(url) for url in targets))
        for url, answered in zip(targets, results, strict=True):
            if answered:
                self._silent.pop(url, None)
            else:
                self._silent[url] = time.monotonic()
        return sum(results)

    async def sync_with(self, url: str) -> bool:
        """One push-pull exchange with the proxy at ``url``; False when it did not answer."""
        proxy = self._services()
        self.syncs += 1
        hello = {"from": self.site, "fingerprint": self.fingerprint()}
        try:
            answer = await proxy.fetch_json(_sync_url(url), hello, timeout=SYNC_TIMEOUT)
            if not isinstance(answer, dict) or answer.get("same"):
                return True
            self._take(answer)  # their revocations
            theirs = answer.get("versions")
            if not isinstance(theirs, dict):
                return True
            self.exchanges += 1
            push = {"from": self.site, "versions": model.digest(self.entries),
                    "entries": [e.to_json() for e in model.wanted_by(theirs, self.entries)],
                    "revocations": [r.to_json() for r in self.revocations]}  # fmt: skip
            answer = await proxy.fetch_json(_sync_url(url), push, timeout=SYNC_TIMEOUT)
        except SiteUnreachable as exc:
            reason = exc.reason[:80] if len(self.unanswered) < 32 else "other"
            self.unanswered[reason] = self.unanswered.get(reason, 0) + 1
            return False
        if isinstance(answer, dict):
            self._take(answer)  # what they had newer
        return True

    def fingerprint(self) -> str:
        """The hash of this directory (versions and revocations), kept until it changes."""
        if self._fingerprint is None:
            self._fingerprint = model.fingerprint(model.digest(self.entries), self.revoked)
        return self._fingerprint

    async def _sync(self, request: web.Request) -> web.Response:
        """Admit what a peer offers; answer ``same``, our versions (to a hello), or the
        entries the peer lacks (to a push that carries its versions)."""
        if request.content_length is not None and request.content_length > MAX_SYNC_BYTES:
            return web.json_response({"error": "sync over 4 MiB"}, status=413)
        data = bytearray()
        try:
            async for chunk in request.content.iter_any():  # whole, however it arrives
                data += chunk
                if len(data) > MAX_SYNC_BYTES:
                    return web.json_response({"error": "sync over 4 MiB"}, status=413)
        except (OSError, aiohttp.ClientPayloadError):  # the peer gave up (its sync timed out)
            return web.json_response({"error": "the offer broke off"}, status=400)
        try:
            offer = json.loads(data)
        except ValueError:
            return web.json_response({"error": "not JSON"}, status=400)
        if not isinstance(offer, dict):
            return web.json_response({"error": "not a JSON object"}, status=400)
        self._take(offer)
        theirs = offer.get("versions")
        if isinstance(theirs, dict):
            wanted = model.wanted_by(theirs, self.entries)
            return web.json_response({"entries": [e.to_json() for e in wanted]})
        if "fingerprint" not in offer:
            return web.json_response({"taken": True})
        if offer["fingerprint"] == self.fingerprint():
            return web.json_response({"same": True})
        return web.json_response(
            {
                "versions": model.digest(self.entries),
                "revocations": [r.to_json() for r in self.revocations],
            }
        )

    async def _list(self, request: web.Request) -> web.Response:
        """Every admitted site (public: names, URLs, keys, services)."""
        entries = [e.to_json() for e in self.entries.values()]
        return web.json_response({"site": self.site, "entries": entries})

    def _take(self, doc: Mapping[str, Any]) -> None:
        """Admit what an offer or answer carries: revocations first, then entries."""
        raws = doc.get("revocations") or []
        for raw in raws[:MAX_SYNC_ENTRIES] if isinstance(raws, list) else ():
            try:
                revocation = model.revocation_from_json(raw)
                if (revocation.site, revocation.key) in self.revoked:
                    continue  # known: no signature to check
                revocation = model.admit_revocation(revocation, self.config.authorities)
            except Refused as exc:
                log.info("revocation refused: %s", exc)
                continue
            self._revoke(revocation)
        raws = doc.get("entries") or []
        now, revoked = time.time(), frozenset(self.revoked)
        for raw in raws[:MAX_SYNC_ENTRIES] if isinstance(raws, list) else ():
            try:
                entry = model.entry_from_json(raw)
                if entry.site == self.site or not model.newer(entry, self.entries.get(entry.site)):
                    continue  # nothing new: no signature to check
                entry = model.admit(
                    entry, self.config.authorities, now=now, revoked=revoked,
                    verified=self._endorsed,
                )  # fmt: skip
            except Refused as exc:
                log.info("directory entry refused: %s", exc)
                continue
            self.entries[entry.site] = entry
            self._changed()
            self._apply(entry)

    def _revoke(self, revocation: model.Revocation) -> None:
        mark = (revocation.site, revocation.key)
        if mark in self.revoked:
            return
        self.revoked.add(mark)
        self.revocations.append(revocation)
        self._changed()
        entry = self.entries.get(revocation.site)
        if entry is not None and key_id(entry.public_key) == revocation.key:
            del self.entries[revocation.site]
            if self._proxy is not None:
                self._proxy.forget_peer(revocation.site)

    def _apply(self, entry: Entry) -> None:
        """Make the entry's site a peer of the proxy, or forget it (offline: nothing to do)."""
        proxy = self._proxy
        if proxy is None:
            return
        if entry.state == "left":
            proxy.forget_peer(entry.site)
        else:
            proxy.learn_peer(
                PeerConfig(entry.site, URL(entry.url), public_keys=(entry.public_key,))
            )

    def _services(self) -> ProxyServices:
        if self._proxy is None:
            raise RuntimeError("the directory extension is not started")
        return self._proxy

    # -- persistence ----------------------------------------------------------------------

    def load(self) -> None:
        """Read back the directory kept in ``state_dir`` (nothing when there is none)."""
        try:
            doc = json.loads(self._file.read_text())
        except (OSError, ValueError):
            return
        self._take(doc if isinstance(doc, dict) else {})

    def _changed(self) -> None:
        self._fingerprint = None
        self._dirty = True

    def _save(self) -> None:
        self._dirty, self._saved_at = False, time.monotonic()
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        doc = {"entries": [e.to_json() for e in self.entries.values()],
               "revocations": [r.to_json() for r in self.revocations]}  # fmt: skip
        temp = self._file.with_suffix(".tmp")
        temp.write_text(json.dumps(doc))
        temp.replace(self._file)


def _sync_url(url: str) -> str:
    return url.rstrip("/") + DIRECTORY_SYNC_PATH


def _load_endorsement(path: Path) -> model.Endorsement:
    try:
        doc = json.loads(path.read_text())
        return model.Endorsement(
            str(doc["site"]),
            str(doc["public_key"]),
            float(doc["expires"]),
            str(doc["authority"]),
            str(doc["signature"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"[directory] endorsement_file {path}: {exc}") from exc


def _path(text: str, base_dir: Path | None) -> Path:
    path = Path(text)
    return base_dir / path if not path.is_absolute() and base_dir is not None else path
