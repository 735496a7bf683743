"""Spread the site directory proxy to proxy (push-pull anti-entropy), as a proxy extension.

Every ``gossip_interval`` seconds a proxy picks ``fanout`` sites at random among those it
knows (its seeds while it knows none) and syncs with each: it sends the hash of its directory
(a few bytes, whatever the size of the edge); the other side answers ``same`` -- the steady
state -- or its versions; then the first side pushes what the other lacks with its own
versions, and gets back what it lacks itself. Sync format 2 (B9) adds ``keyed`` to the hello
(a fingerprint that also covers the key ids of entries with a handover) and ``keys`` (those
key ids) to each digest, so that a rotation reaches a peer holding another key whatever the
versions; a peer of format 1 sends neither and gets the old sync (versions only). A digest
only chooses what is sent; what is admitted is ``model.succeeds``'s. Each sync is a signed
hop (for ``*``: a seed may be known only by its URL) from a site this one knows, or a
newcomer whose own entry (``self`` in the offer) an authority endorsed, and passes the
site's trust policy (the ``directory`` capability, ``proxy/trust.py``); on a site with a peer
listener it is served there only. An offer is bounded (``MAX_SYNC_BYTES``, ``MAX_OFFER_ENTRIES``,
``MAX_OFFER_REVOCATIONS``); its signatures are checked off the event loop in batches, once per
new entry (a known version costs nothing), and one log line per sync says what was taken.
Admitted sites become peers of the proxy (its
:class:`~edgescope.proxy.peerbook.PeerBook`); a site that left is forgotten. The directory is
kept in ``<state_dir>/directory.json``, so a restarted or partitioned proxy keeps its last one.

    [directory]
    state_dir = "/var/lib/edgescope/Paris"
    url = "https://10.66.0.1:20191"          # how peers reach this site (its peer listener)
    endorsement_file = "paris.endorsement"   # edgescope directory endorse ...
    authorities = ["ed25519:..."]            # whose endorsements this site trusts
    seeds = ["https://10.66.0.2:20291"]      # one known peer is enough
    previous_key_file = "paris-old.key"      # while rotating: hands the entry to the new key
    max_sites = 100000                       # entries (and revocations) kept at most
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
from edgescope.directory.model import Entry, NotAdmitted
from edgescope.errors import ConfigError, SiteUnreachable
from edgescope.proxy.body import read_capped
from edgescope.proxy.config import PeerConfig, http_url
from edgescope.proxy.extension import ProxyServices
from edgescope.proxy.keys import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
    key_id,
    load_private_file,
    load_public,
)
from edgescope.proxy.protocol import (
    DIRECTORY_DESTINATION,
    DIRECTORY_PATH,
    DIRECTORY_REVOKE_PATH,
    DIRECTORY_SYNC_PATH,
    PEER_HEADER,
    ForgedHop,
    content_digest,
    sign_hop,
)

log = logging.getLogger("edgescope.directory")
MAX_SYNC_BYTES = 4 * 1024 * 1024
MAX_NEWCOMER_BYTES = 64 * 1024
"""Largest offer from a sender not known yet (its hello, with its own entry)."""
MAX_OFFER_ENTRIES = 2_000
"""Most entries one offer or answer carries (a sync sends the rest next round); past it 413."""
MAX_OFFER_REVOCATIONS = 1_000
MAX_REVOKE_BYTES = 64 * 1024
BODY_IDLE = 10.0
"""Seconds a sync's or a revocation's body may pause (anyone may send one: a body that
stalls held its connection for ever)."""
MAX_REVOKE_COUNT = 16
"""Bounds of one anonymous call to the revocation endpoint (authority signatures only)."""
VERIFY_BATCH = 128
"""Entries whose signatures one trip to a worker thread checks."""
VERIFYING = 2
"""Offers whose signatures are checked at once (the others wait their turn)."""
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
    previous_key_file: Path | None = None
    """The key this site rotates from: its signature hands the site's entry to the new key."""
    max_sites: int = 100_000
    """Most entries (and revocations) kept; a new site past it is refused."""

    @classmethod
    def parse(cls, raw: Mapping[str, Any], base_dir: Path | None = None) -> DirectoryConfig:
        keys = {"state_dir", "url", "endorsement_file", "authorities", "seeds",
                "gossip_interval", "fanout", "region", "previous_key_file",
                "max_sites"}  # fmt: skip
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
        http_url(raw["url"], "[directory] url")
        seeds = raw.get("seeds", [])
        if not isinstance(seeds, list) or not all(isinstance(s, str) for s in seeds):
            raise ConfigError("[directory]: 'seeds' must be a list of peer URLs")
        return cls(
            _path(raw["state_dir"], base_dir),
            raw["url"],
            _path(raw["endorsement_file"], base_dir),
            tuple(load_public(str(a)) for a in authorities),
            tuple(seeds),
            _number(raw, "gossip_interval", 2.0),
            _count(raw, "fanout", 3),
            str(raw.get("region", "")),
            _path(str(raw["previous_key_file"]), base_dir) if "previous_key_file" in raw else None,
            _count(raw, "max_sites", 100_000),
        )


class Directory:
    """The site directory of one proxy: admitted entries, gossip, and the peers they make."""

    name = "directory"
    events = ()
    """It takes part in no call: its routes, start and stop are all it has."""

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
        self.refused = 0
        """Entries and revocations refused so far (each sync logs its own count)."""
        self._verifying = asyncio.Semaphore(VERIFYING)
        self._fingerprint: str | None = None
        self._keyed: str | None = None
        self._rotations: dict[str, str] | None = None
        self._key_ids: dict[str, tuple[str, str]] = {}
        """Site: (public key, key id) of the rotations last listed (at most one per entry)."""
        self._listing: bytes | None = None
        """The public listing's body, kept until the directory changes."""
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
        return [
            web.post(DIRECTORY_SYNC_PATH, self._sync),
            web.post(DIRECTORY_REVOKE_PATH, self._revocations),
            web.get(DIRECTORY_PATH, self._list),
        ]

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

    # -- this site's own entry -----------------------------------------------------------

    def publish(self, state: str = "up") -> Entry:
        """Sign this site's entry anew (a higher version) and keep it."""
        endorsement = _load_endorsement(self.config.endorsement_file)
        current = self.entries.get(self.site)
        version = max(time.time_ns() // 1_000_000, (current.version + 1) if current else 0)
        previous = self.config.previous_key_file
        try:
            entry = model.advertise(
                self.key,
                endorsement,
                self.config.url,
                self.services,
                version=version,
                state=state,
                region=self.config.region,
                previous=load_private_file(previous) if previous is not None else None,
            )
        except NotAdmitted as exc:
            raise ConfigError(f"[directory]: cannot publish this site's entry: {exc}") from exc
        try:
            self.entries[self.site] = model.admit(
                entry, self.config.authorities, now=time.time(), revoked=frozenset(self.revoked)
            )
        except NotAdmitted as exc:
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
        if len(self._silent) > 2 * len(known) + len(self.config.seeds) + 16:
            keep = {*known, *self.config.seeds}
            self._silent = {u: t for u, t in self._silent.items() if u in keep}
        results = await asyncio.gather(*(self.sync_with(url) for url in targets))
        for url, answered in zip(targets, results, strict=True):
            if answered:
                self._silent.pop(url, None)
            else:
                self._silent[url] = time.monotonic()
        return sum(results)

    async def sync_with(self, url: str) -> bool:
        """One push-pull exchange with the proxy at ``url``; False when it did not answer."""
        self.syncs += 1
        hello = {"from": self.site, "fingerprint": self.fingerprint(),
                 "keyed": self.keyed_fingerprint()}  # fmt: skip
        try:
            answer = await self._post(url, hello)
            if not isinstance(answer, dict) or answer.get("same"):
                return True
            await self.take(answer, url)  # their revocations
            if not isinstance(answer.get("versions"), dict):
                return True
            try:
                theirs, keys = model.digest_from_json(answer["versions"], answer.get("keys"))
            except NotAdmitted as exc:
                log.warning("directory sync with %s: bad digest: %s", url[:100], exc)
                return True
            self.exchanges += 1
            push = {"from": self.site, **self._digest(),
                    "entries": [e.to_json() for e in self._wanted_by(theirs, keys)],
                    "revocations": self._revocations_json()}  # fmt: skip
            answer = await self._post(url, push)
        except SiteUnreachable as exc:
            reason = exc.reason[:80] if len(self.unanswered) < 32 else "other"
            self.unanswered[reason] = self.unanswered.get(reason, 0) + 1
            return False
        if isinstance(answer, dict):
            await self.take(answer, url)  # what they had newer
        return True

    async def _post(self, url: str, doc: dict[str, Any]) -> Any:
        """``doc`` with this site's own entry, signed, to ``url``'s sync endpoint."""
        own = self.entries.get(self.site)
        data = json.dumps({**doc, "self": own.to_json()} if own else doc).encode()
        return await self._services().fetch_json(
            _sync_url(url),
            data,
            timeout=SYNC_TIMEOUT,
            headers=sign_sync(self.key, self.site, data),
            loads=model.loads,
        )

    def _revocations_json(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.revocations[-MAX_OFFER_REVOCATIONS:]]

    def fingerprint(self) -> str:
        """The hash of this directory (versions and revocations), kept until it changes:
        what a peer of sync format 1 compares."""
        if self._fingerprint is None:
            self._fingerprint = model.fingerprint(model.digest(self.entries), self.revoked)
        return self._fingerprint

    def keyed_fingerprint(self) -> str:
        """The hash of format 2: versions, revocations and rotations (``keyed``)."""
        if self._keyed is None:
            self._keyed = model.fingerprint(
                model.digest(self.entries), self.revoked, self.rotations()
            )
        return self._keyed

    def rotations(self) -> dict[str, str]:
        """The key id of each entry this site holds with a handover, kept until it changes."""
        if self._rotations is None:  # model.rotations, each key id computed once per key
            ids, out = self._key_ids, {}
            for site, entry in self.entries.items():
                if entry.handover:
                    known = ids.get(site)
                    if known is None or known[0] != entry.endorsement.public_key:
                        known = (entry.endorsement.public_key, key_id(entry.public_key))
                    out[site] = known
            self._key_ids = out
            self._rotations = {site: known[1] for site, known in out.items()}
        return self._rotations

    def _digest(self) -> dict[str, Any]:
        """This directory's digest, both formats: versions, and the rotations' keys."""
        return {"versions": model.digest(self.entries), "keys": self.rotations()}

    def _wanted_by(self, theirs: Mapping[str, int], keys: Mapping[str, str] | None) -> list[Entry]:
        wanted = model.wanted_by(theirs, self.entries, keys, self.rotations())
        return wanted[:MAX_OFFER_ENTRIES]

    async def _sync(self, request: web.Request) -> web.Response:
        """Admit what a peer offers; answer ``same``, our versions (to a hello), or the
        entries the peer lacks (to a push that carries its versions)."""
        sender = request.headers.get(PEER_HEADER)
        if sender is None:  # before reading a byte: anonymous offers cost nothing
            return _error(403, "directory syncs are for signed peer proxies only")
        services = self._services()
        marker = None
        if services.is_peer(sender):  # known: its signature first, then the body is parsed
            try:
                marker = services.verify_peer(request, destination=DIRECTORY_DESTINATION)
            except ForgedHop as exc:
                return _error(403, str(exc))
        limit = MAX_SYNC_BYTES if marker is not None else MAX_NEWCOMER_BYTES
        too_large = f"sync over {limit} bytes" + ("" if marker else " from a site not known here")
        if request.content_length is not None and request.content_length > limit:
            return _error(413, too_large)
        try:
            data = await _whole(request, limit)
        except TimeoutError:
            return _error(408, f"the offer paused for over {BODY_IDLE:g} s")
        except (OSError, aiohttp.ClientPayloadError):  # the peer gave up (its sync timed out)
            return _error(400, "the offer broke off")
        if data is None:
            return _error(413, too_large)
        try:
            offer = model.loads(bytes(data))
        except NotAdmitted as exc:
            return _error(400, f"bad offer: {exc}")
        except ValueError:
            return _error(400, "not JSON")
        if not isinstance(offer, dict):
            return _error(400, "not a JSON object")
        if marker is None:  # a newcomer: its own entry says which key signed the offer
            try:
                newcomer = await self._newcomer(request, offer)
                marker = services.verify_peer(
                    request, destination=DIRECTORY_DESTINATION, newcomer=newcomer
                )
            except ForgedHop as exc:
                return _error(403, str(exc))
        if marker.content_digest != content_digest(bytes(data)):
            return _error(403, "the offer is not the body its sender signed")
        for key, most in (("entries", MAX_OFFER_ENTRIES), ("revocations", MAX_OFFER_REVOCATIONS)):
            raws = offer.get(key)
            if raws is not None and not isinstance(raws, list):
                return _error(400, f"'{key}' is not a list")
            if raws is not None and len(raws) > most:
                return _error(413, f"{len(raws)} {key} in one offer; at most {most}")
        digest = None
        if "versions" in offer:  # checked before anything is taken: a bad digest, a 400
            try:
                digest = model.digest_from_json(offer["versions"], offer.get("keys"))
            except NotAdmitted as exc:
                return _error(400, f"bad digest: {exc}")
        await self.take(offer, marker.peer)
        if digest is not None:
            wanted = self._wanted_by(*digest)
            return web.json_response({"entries": [e.to_json() for e in wanted]})
        if "fingerprint" not in offer:
            return web.json_response({"taken": True})
        keyed = "keyed" in offer  # format 2 compares rotations too; format 1, versions only
        mine = self.keyed_fingerprint() if keyed else self.fingerprint()
        if offer["keyed" if keyed else "fingerprint"] == mine:
            return web.json_response({"same": True})
        return web.json_response({**self._digest(), "revocations": self._revocations_json()})

    async def _revocations(self, request: web.Request) -> web.Response:
        """An authority's revocations, handed to this site by anyone (they carry the
        authority's signature, the only thing checked): a few per call, then they spread."""
        if request.content_length is None or request.content_length > MAX_REVOKE_BYTES:
            return _error(413, f"give a Content-Length of at most {MAX_REVOKE_BYTES} bytes")
        try:
            doc = model.loads(await _whole(request, MAX_REVOKE_BYTES) or b"")
        except TimeoutError:
            return _error(408, f"the revocation paused for over {BODY_IDLE:g} s")
        except NotAdmitted as exc:
            return _error(400, f"bad revocation: {exc}")
        except (ValueError, OSError, aiohttp.ClientPayloadError):
            return _error(400, "not JSON")
        raws = doc.get("revocations") if isinstance(doc, dict) else None
        if not isinstance(raws, list) or not 0 < len(raws) <= MAX_REVOKE_COUNT:
            return _error(400, f"expected {{'revocations': [...]}}, 1 to {MAX_REVOKE_COUNT}")
        taken = await self.take({"revocations": raws}, "an authority's revocation")
        if taken.refused:
            return _error(403, f"{taken.refused} refused: {taken.first_refusal}")
        return web.json_response({"revoked": taken.revoked, "known": taken.known})

    async def _newcomer(self, request: web.Request, offer: Mapping[str, Any]) -> PeerConfig | None:
        """The sender, when it is no peer yet but its own entry (``self``) is admitted here:
        its key may sign the sync (the trust policy then judges it as a learned site)."""
        sender = request.headers.get(PEER_HEADER, "")
        raw = offer.get("self")
        if not sender or self._services().is_peer(sender) or not isinstance(raw, dict):
            return None
        try:
            entry = model.entry_from_json(raw)
            if entry.site != sender or entry.site == self.site or entry.state != "up":
                return None
            revoked = frozenset(self.revoked)
            async with self._verifying:
                entry = await asyncio.to_thread(
                    model.admit, entry, self.config.authorities, now=time.time(),
                    revoked=revoked, verified=self._endorsed,
                )  # fmt: skip
            model.succeeds(entry, self.entries.get(entry.site))
        except NotAdmitted:
            return None
        return PeerConfig(entry.site, URL(entry.url), public_keys=(entry.public_key,))

    async def _list(self, request: web.Request) -> web.Response:
        """Every admitted site (public: names, URLs, keys, services)."""
        if self._listing is None:  # built once per change (100,000 sites: 42.7 MB of JSON)
            entries = [e.to_json() for e in self.entries.values()]
            self._listing = json.dumps({"site": self.site, "entries": entries}).encode()
        return web.Response(body=self._listing, content_type="application/json")

    async def take(self, doc: Mapping[str, Any], source: str) -> Taken:
        """Admit what an offer or answer from ``source`` carries: revocations first, then
        entries; signatures checked in a worker thread, a batch at a time; one log line."""
        taken = Taken()
        revocations, entries = self._candidates(doc, taken)
        async with self._verifying:
            for batch in _batches(revocations):
                refusals = await asyncio.to_thread(self._check_revocations, batch)
                self._apply_revocations(refusals, taken)
            for batch in _batches(entries):
                current = {e.site: self.entries.get(e.site) for e in batch}
                checked = await asyncio.to_thread(
                    self._check_entries, batch, current, time.time(), frozenset(self.revoked)
                )
                self._apply_entries(checked, current, taken)
        taken.log(source)
        self.refused += taken.refused
        return taken

    def take_now(self, doc: Mapping[str, Any], source: str) -> Taken:
        """:meth:`take` on the calling thread (reading this site's own file at start)."""
        taken = Taken()
        revocations, entries = self._candidates(doc, taken)
        self._apply_revocations(self._check_revocations(revocations), taken)
        current = {e.site: self.entries.get(e.site) for e in entries}
        checked = self._check_entries(entries, current, time.time(), frozenset(self.revoked))
        self._apply_entries(checked, current, taken)
        taken.log(source)
        return taken

    def _candidates(
        self, doc: Mapping[str, Any], taken: Taken
    ) -> tuple[list[model.Revocation], list[Entry]]:
        """What is new in ``doc`` (cheap: no signature checked); the rest counted."""
        revocations: dict[tuple[str, str], model.Revocation] = {}
        raws = doc.get("revocations")
        for raw in raws[:MAX_OFFER_REVOCATIONS] if isinstance(raws, list) else ():
            try:
                revocation = model.revocation_from_json(raw)
            except NotAdmitted as exc:
                taken.refuse(str(exc))
                continue
            mark = (revocation.site, revocation.key)
            if mark in self.revoked or mark in revocations:
                taken.known += 1
            else:
                revocations[mark] = revocation
        entries: dict[str, Entry] = {}
        raws = doc.get("entries")
        raws = list(raws[:MAX_OFFER_ENTRIES]) if isinstance(raws, list) else []
        if isinstance(doc.get("self"), dict):
            raws.append(doc["self"])
        for raw in raws:
            try:
                entry = model.entry_from_json(raw)
            except NotAdmitted as exc:
                taken.refuse(str(exc))
                continue
            seen, held = entries.get(entry.site), self.entries.get(entry.site)
            if (
                held is not None
                and not entry.handover
                and entry.endorsement.public_key != held.endorsement.public_key
            ):  # it cannot succeed (model.succeeds): refused before any signature is checked
                taken.refuse(f"{entry.site}: signed with another key than the one this site "
                             "holds for it, and no handover from that key")  # fmt: skip
                continue
            if (
                entry.site == self.site
                or not model.newer(entry, self.entries.get(entry.site))
                or (seen is not None and seen.version >= entry.version)
            ):
                taken.known += 1  # nothing new: no signature to check
                continue
            entries[entry.site] = entry
        return list(revocations.values()), list(entries.values())

    def _check_revocations(
        self, batch: Sequence[model.Revocation]
    ) -> list[model.Revocation | NotAdmitted]:
        """Worker thread: each revocation, or why it is refused."""
        out: list[model.Revocation | NotAdmitted] = []
        for revocation in batch:
            try:
                out.append(model.admit_revocation(revocation, self.config.authorities))
            except NotAdmitted as exc:
                out.append(exc)
        return out

    def _check_entries(
        self,
        batch: Sequence[Entry],
        current: Mapping[str, Entry | None],
        now: float,
        revoked: frozenset[tuple[str, str]],
    ) -> list[Entry | NotAdmitted]:
        """Worker thread: each entry admitted (and succeeding the one held), or why not."""
        out: list[Entry | NotAdmitted] = []
        for entry in batch:
            try:
                admitted = model.admit(
                    entry, self.config.authorities, now=now, revoked=revoked,
                    verified=self._endorsed,
                )  # fmt: skip
                if not model.succeeds(admitted, current.get(entry.site)):
                    raise NotAdmitted(f"{entry.site}: version {entry.version} is not newer")
                out.append(admitted)
            except NotAdmitted as exc:
                out.append(exc)
        return out

    def _apply_revocations(
        self, checked: Sequence[model.Revocation | NotAdmitted], taken: Taken
    ) -> None:
        for result in checked:
            if isinstance(result, NotAdmitted):
                taken.refuse(str(result))
            elif len(self.revocations) >= self.config.max_sites:
                taken.refuse(f"this site keeps {self.config.max_sites} revocations at most")
            else:
                self._revoke(result)
                taken.revoked += 1

    def _apply_entries(
        self,
        checked: Sequence[Entry | NotAdmitted],
        current: Mapping[str, Entry | None],
        taken: Taken,
    ) -> None:
        revoked = self.revoked
        for result in checked:
            if isinstance(result, NotAdmitted):
                taken.refuse(str(result))
                continue
            site, now_held = result.site, self.entries.get(result.site)
            try:
                if (site, key_id(result.public_key)) in revoked:
                    raise NotAdmitted(f"{site}: its key was revoked")
                if now_held is not current.get(site) and not model.succeeds(result, now_held):
                    continue  # another offer took a newer one meanwhile
                if now_held is None and len(self.entries) >= self.config.max_sites:
                    raise NotAdmitted(f"this site keeps {self.config.max_sites} entries at most")
            except NotAdmitted as exc:
                taken.refuse(str(exc))
                continue
            self.entries[site] = result
            taken.admitted += 1
            self._changed()
            self._apply(result)
        if len(self._endorsed) > 2 * self.config.max_sites:
            self._endorsed.clear()  # a cache: checked again when next seen

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
            doc = model.loads(self._file.read_text())
        except (OSError, ValueError):  # NotAdmitted included: a file never stops the proxy
            return
        self.take_now(doc if isinstance(doc, dict) else {}, str(self._file))

    def _changed(self) -> None:
        self._fingerprint = self._keyed = self._listing = None
        self._rotations = None
        self._dirty = True

    def _save(self) -> None:
        self._dirty, self._saved_at = False, time.monotonic()
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        doc = {"entries": [e.to_json() for e in self.entries.values()],
               "revocations": [r.to_json() for r in self.revocations]}  # fmt: skip
        temp = self._file.with_suffix(".tmp")
        temp.write_text(json.dumps(doc))
        temp.replace(self._file)


@dataclass
class Taken:
    """What one offer or answer brought: counts for its single log line."""

    admitted: int = 0
    revoked: int = 0
    known: int = 0
    refused: int = 0
    first_refusal: str = ""

    def refuse(self, reason: str) -> None:
        self.refused += 1
        self.first_refusal = self.first_refusal or reason[:200]

    def log(self, source: str) -> None:
        if self.refused:
            log.warning(
                "directory sync with %s: %d admitted, %d revoked, %d known, %d refused "
                "(first: %s)", source[:100], self.admitted, self.revoked, self.known,
                self.refused, self.first_refusal,
            )  # fmt: skip
        elif self.admitted or self.revoked:
            log.info(
                "directory sync with %s: %d admitted, %d revoked, %d known",
                source[:100], self.admitted, self.revoked, self.known,
            )  # fmt: skip


def sign_sync(key: Ed25519PrivateKey, site: str, data: bytes) -> dict[str, str]:
    """The hop marker of a directory sync ``site`` sends with body ``data``."""
    return sign_hop(
        key, "POST", DIRECTORY_SYNC_PATH, site, DIRECTORY_DESTINATION, 1,
        now=time.time(), body=data,
    )  # fmt: skip


def _batches(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + VERIFY_BATCH] for i in range(0, len(items), VERIFY_BATCH)]


async def _whole(request: web.Request, limit: int) -> bytes | None:
    """The request's whole body (:func:`~edgescope.proxy.body.read_capped`, pausing at most
    :data:`BODY_IDLE` seconds at a time)."""
    return await read_capped(request.content.iter_any(), limit, BODY_IDLE)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _number(raw: Mapping[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 2**53:
        raise ConfigError(f"[directory] {key}: expected a non-negative number, got {value!r}")
    return float(value)


def _count(raw: Mapping[str, Any], key: str, default: int) -> int:
    value = _number(raw, key, default)
    if value != int(value):  # 0.5 was taken as 0
        raise ConfigError(f"[directory] {key}: expected a whole number, got {raw[key]!r}")
    return int(value)


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
