"""The replica registry: one site's replica sets, pending queue and applied keys, in a database.

Neighbours: :mod:`hooks` writes here (replica sets received from peers or recorded after an
``&`` create, queued writes for unreachable members, idempotency keys of applied writes,
the last applied stamp per set) and reads sets through the in-memory index, so the
per-request lookups that :mod:`translate` and :mod:`collapse` need never touch the database.
``edgescope replicas list|show|pending`` opens the same database read-only. The schema and
the engines are in :mod:`database`.

Several proxies of one site may share the database (``[replicas] database =
"mysql+pymysql://..."``). Everything but the set index is read from the database when it is
used, so a queued write or an applied key is seen at once by every proxy; each proxy's index
follows the others' changes through :meth:`Registry.sync` (the extension runs it every
``sync_interval``), and :meth:`fresh` reads one set from the database when it must be
current. What two proxies must not do at once is claimed in the database: an idempotency
key being applied (:meth:`claim_apply`) and named leases (:meth:`acquire`).

The methods are blocking; the proxy calls them through ``asyncio.to_thread``. Each write is
one transaction, committed before the method returns, so a restarted proxy finds every
queued operation.

    >>> import tempfile
    >>> from edgescope.replicas.model import Member
    >>> registry = Registry(tempfile.mkdtemp())
    >>> members = (Member("Paris", "5f0a9e21"), Member("Corte", "c93e7b10"))
    >>> s = ReplicaSet("5f0a9e21", "identity", "/v3/users", members)
    >>> registry.put_set(s)
    True
    >>> registry.lookup("c93e7b10").handle
    '5f0a9e21'
"""

from __future__ import annotations

import enum
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from edgescope.errors import EdgescopeError, ErrorCode
from edgescope.replicas import database as db
from edgescope.replicas.database import FILENAME, redact
from edgescope.replicas.model import Hlc, MemberState, PendingOp, ReplicaSet
from edgescope.replicas.validate import InvalidRecord, check_record

__all__ = [
    "FILENAME",
    "Claim",
    "ClaimState",
    "IdCollision",
    "QueueBounds",
    "QueueFull",
    "Registry",
    "RegistryError",
    "RegistryUnavailable",
]
log = logging.getLogger("edgescope.replicas")
SYNC_OVERLAP = 5.0
"""Seconds a sync looks back past its last one: a change committed late (a slow transaction,
clocks of two hosts a little apart) is still seen."""
_CONFLICT_RETRIES = 5
IN_DOUBT = "(in doubt)"
"""The owner of a claim left in doubt (:meth:`Registry.leave_in_doubt`): nobody's, expired."""
T = TypeVar("T")


class RegistryError(EdgescopeError):
    """What went wrong in the replica registry, in its own terms; each carries its code
    (``errors.ErrorCode``), which the proxy turns into an answer where it answers errors."""


class RegistryUnavailable(RegistryError):
    """The registry's database cannot be reached (the proxy answers a clear 503)."""

    code = ErrorCode.REPLICA_DB_UNAVAILABLE

    def __init__(self, where: str, cause: BaseException) -> None:
        reason = str(getattr(cause, "orig", cause)).splitlines()[0][:200]
        super().__init__(f"this proxy cannot reach its replica database {where}: {reason}")


class IdCollision(RegistryError):
    """A set's ids are already indexed to another set: refused (409), never merged."""

    code = ErrorCode.REPLICA_ID_COLLISION


class QueueFull(RegistryError):
    """The eventual-write queue is at one of its bounds: the write is not queued (507)."""

    code = ErrorCode.REPLICA_QUEUE_FULL


@dataclass(frozen=True, slots=True)
class QueueBounds:
    """The bounds of the eventual-write queue (``[replicas] queue_*``)."""

    max_ops: int = 10_000
    """Queued writes at most, for every target site together."""
    max_bytes: int = 256 * 1024 * 1024
    """Bytes at most (bodies and kept headers), every target together."""
    owner_share: float = 0.25
    """The part of each bound one caller (one token's project, see :mod:`hooks`) may hold."""


class ClaimState(enum.Enum):
    MINE = "mine"
    DONE = "done"
    BUSY = "busy"


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of :meth:`Registry.claim_apply`."""

    state: ClaimState
    answer: tuple[int, bytes, dict[str, str]] | None = None
    """The remembered answer when ``DONE``."""
    taken_over: bool = False
    """``MINE`` after another proxy's claim expired: that proxy may have applied it (in doubt)."""
    answered_at: float = 0.0
    """When the answer of a ``DONE`` claim was remembered (``time.time()``)."""
    since: float = 0.0
    """When the write was first claimed (a resource it made is not older)."""
    until: float = 0.0
    """``MINE`` taken over: when the last claim before ended (it expired, or its proxy gave
    up): the write was sent no later (a resource it made is not newer)."""


class Registry:
    """One site's replica sets, pending queue and applied idempotency keys."""

    def __init__(
        self,
        location: str | Path,
        *,
        read_only: bool = False,
        bounds: QueueBounds | None = None,
    ) -> None:
        """``location``: a state folder (SQLite file there) or a database URL."""
        self.bounds = bounds or QueueBounds()
        self.read_only = read_only
        self.quarantined = 0
        """Rows moved aside by this proxy because they failed their checks when read."""
        self.queue_full = 0
        """Writes refused by this proxy because the queue was at a bound."""
        self.usage = (0, 0)
        """(writes, bytes) queued, as this proxy last counted them (after each of its own
        enqueues and each :meth:`queue_usage`): read with no I/O, for checks and metrics."""
        self.url = db.database_url(location)
        self.path = Path(location) / FILENAME if "://" not in str(location) else None
        self.engine = db.make_engine(self.url, read_only=read_only)
        if not read_only:
            self._run(db.create_schema)
        self._lock = threading.Lock()
        self._sets: dict[str, ReplicaSet] = {}
        self._by_id: dict[str, str] = {}
        self._synced_at = 0.0
        self.sync()

    def __repr__(self) -> str:
        return f"Registry({redact(self.url)!r})"

    def close(self) -> None:
        self.engine.dispose()

    # -- replica sets (reads are in memory) ---------------------------------------------

    def lookup(self, handle_or_id: str) -> ReplicaSet | None:
        """The set known by this handle or member id, if any (from the index)."""
        handle = self._by_id.get(handle_or_id)
        return self._sets.get(handle) if handle is not None else None

    @property
    def has_sets(self) -> bool:
        return bool(self._sets)

    def sets(self) -> list[ReplicaSet]:
        return sorted(self._sets.values(), key=lambda s: (s.service, s.handle))

    def sync(self) -> int:
        """Bring the index up to date with every change in the database since the last
        sync (made by any proxy); returns how many sets changed here."""
        started = time.time()
        since = self._synced_at - SYNC_OVERLAP if self._synced_at else None
        query = sa.select(db.sets.c.handle, db.sets.c.record, db.sets.c.deleted)
        if since is not None:
            query = query.where(db.sets.c.changed >= since)
        rows = self._run(lambda connection: connection.execute(query).all(), write=False)
        changed = 0
        bad: list[tuple[str, str, str]] = []
        with self._lock:
            for handle, record, deleted in rows:
                try:
                    changed += self._apply_row(str(handle), str(record), bool(deleted))
                except InvalidRecord as exc:
                    bad.append((str(handle), str(record), str(exc)))
            self._synced_at = started
        for handle, record, reason in bad:
            self._quarantine_set(handle, record, reason)
        return changed

    def fresh(self, handle: str) -> ReplicaSet | None:
        """The set ``handle`` as the database has it now (the index is updated too)."""
        query = sa.select(db.sets.c.record, db.sets.c.deleted).where(db.sets.c.handle == handle)
        row = self._run(lambda connection: connection.execute(query).first(), write=False)
        with self._lock:
            if row is None:
                self._apply_row(handle, None, True)
                return None
            try:
                self._apply_row(handle, str(row[0]), bool(row[1]))
            except InvalidRecord as exc:
                reason = str(exc)
            else:
                return self._sets.get(handle)
        self._quarantine_set(handle, str(row[0]), reason)
        return None

    def _quarantine_set(self, handle: str, record: str, reason: str) -> None:
        """Move a set row that fails its checks aside (table ``quarantine``), drop it from
        the index, log it and count it: the proxy goes on with the others."""
        log.error("replica set %r quarantined (%s): %s", handle[:80], reason, record[:300])
        self.quarantined += 1
        with self._lock:
            self._apply_row(handle, None, True)
        if self.read_only:
            return

        def move(connection: sa.Connection) -> None:
            connection.execute(
                db.quarantine.insert().values(
                    kind="set", name=handle[:255], row=record, reason=reason, at=time.time()
                )
            )
            connection.execute(db.sets.delete().where(db.sets.c.handle == handle))

        self._run(move)

    def quarantine(self) -> list[dict[str, Any]]:
        """The rows moved aside, newest first (what ``GET /edgescope/replicas`` reports)."""
        q = db.quarantine.c
        query = sa.select(q.kind, q.name, q.reason, q.at).order_by(q.seq.desc()).limit(100)
        rows = self._run(lambda connection: connection.execute(query).mappings().all(), write=False)
        return [dict(row) for row in rows]

    def collisions(self, replica_set: ReplicaSet, *, new: bool = False) -> list[str]:
        """The ids of ``replica_set`` the index has for another set (its handle too when
        ``new``: a create must not take over a set recorded earlier)."""
        with self._lock:
            found = [
                f"{id_} (set {self._by_id[id_]})"
                for id_ in sorted(replica_set.ids)
                if self._by_id.get(id_, replica_set.handle) != replica_set.handle
            ]
            if new and replica_set.handle in self._sets:
                found.append(f"{replica_set.handle} (set {replica_set.handle})")
        return found

    def put_set(self, replica_set: ReplicaSet, *, new: bool = False) -> bool:
        """Store ``replica_set`` unless a record with a greater version is already there.

        Raises :class:`IdCollision` when one of its ids belongs to another set (or, when
        ``new``, its handle is a set already), InvalidRecord when it is malformed.
        """
        check_record(replica_set)
        if new:
            self.fresh(replica_set.handle)
        taken = self.collisions(replica_set, new=new)
        if taken:
            raise IdCollision(
                f"replica set {replica_set.handle[:80]}: ids already belong to another set: "
                + ", ".join(taken[:5])
            )
        version = replica_set.version.encode() if replica_set.version else None
        values = {
            "record": json.dumps(replica_set.to_json()),
            "version": version,
            "changed": time.time(),
            "deleted": False,
        }
        c = db.sets.c
        newer_or_same = c.version.is_(None) | c.deleted
        if version is not None:
            newer_or_same = newer_or_same | (c.version <= version)
        update = db.sets.update().where(c.handle == replica_set.handle, newer_or_same)

        def write(connection: sa.Connection) -> bool:
            if connection.execute(update.values(**values)).rowcount:
                return True
            insert = _insert_ignore(db.sets).values(handle=replica_set.handle, **values)
            return bool(connection.execute(insert).rowcount)  # 0: there, and newer

        stored = self._run(write)
        self.fresh(replica_set.handle) if not stored else self._index_now(replica_set)
        return stored

    def mark_gone(self, handle: str, site: str, version: Hlc) -> ReplicaSet | None:
        """Record that ``site``'s member was deleted; returns the updated set."""
        current = self.fresh(handle)
        if current is None:
            return None
        member = current.member(site)
        updated = current.with_member(site, member.id if member else None, MemberState.GONE)
        updated = ReplicaSet(
            updated.handle, updated.service, updated.collection, updated.members, version
        )
        self.put_set(updated)
        return updated

    def delete_set(self, handle: str) -> None:
        """Delete the set (a tombstone the other proxies' :meth:`sync` sees)."""
        statement = (
            db.sets.update()
            .where(db.sets.c.handle == handle)
            .values(deleted=True, last_write=None, changed=time.time())
        )
        self._write(statement)
        with self._lock:
            self._apply_row(handle, None, True)

    def last_write(self, handle: str) -> Hlc | None:
        """The stamp of the last write applied to this set at this site (the LWW reference)."""
        query = sa.select(db.sets.c.last_write).where(
            db.sets.c.handle == handle, db.sets.c.deleted.is_(False)
        )
        value = self._run(lambda connection: connection.execute(query).scalar(), write=False)
        if not value:
            return None
        try:
            return Hlc.parse(value)
        except ValueError as exc:  # written by an older edgescope: the LWW reference is lost
            log.error("set %r: stored last write unreadable, ignored: %s", handle[:80], exc)
            return None

    def set_last_write(self, handle: str, hlc: Hlc) -> None:
        c, stamp = db.sets.c, hlc.encode()
        self._write(
            db.sets.update()
            .where(c.handle == handle, c.last_write.is_(None) | (c.last_write < stamp))
            .values(last_write=stamp)
        )

    def _index_now(self, replica_set: ReplicaSet) -> None:
        with self._lock:
            self._apply_row(replica_set.handle, json.dumps(replica_set.to_json()), False)

    def _apply_row(self, handle: str, record: str | None, deleted: bool) -> int:
        """Index one row (under ``self._lock``); 1 when the index changed."""
        current = self._sets.get(handle)
        new = None if deleted or record is None else _load_set(record)
        if new == current:
            return 0
        if current is not None:
            del self._sets[handle]
            for id_ in current.ids:
                if self._by_id.get(id_) == handle:
                    del self._by_id[id_]
        if new is not None:
            self._sets[handle] = new
            for id_ in new.ids:
                self._by_id[id_] = handle
        return 1

    # -- pending queue (eventual mode) --------------------------------------------------

    def enqueue(self, op: PendingOp, owner: str = "") -> int:
        """Queue ``op`` durably; returns its sequence number (an existing key is kept).

        Raises :class:`QueueFull` when the queue, or ``owner``'s share of it, is at a bound.
        """
        headers = json.dumps(op.headers)
        size = len(op.body) + len(headers) + len(op.path)
        values = {
            "key": op.key,
            "target": op.target,
            "handle": op.handle,
            "service": op.service,
            "method": op.method,
            "path": op.path,
            "body": op.body,
            "headers": headers,
            "hlc": op.hlc.encode(),
            "owner": owner[:64],
            "size": size,
        }
        c = db.pending.c

        def write(connection: sa.Connection) -> int:
            query = sa.select(c.seq).where(c.key == op.key)
            seq = connection.execute(query).scalar()
            if seq is not None:
                return int(seq)  # queued already
            self._check_room(connection, owner[:64], size)
            connection.execute(_insert_ignore(db.pending).values(**values))
            self.usage = self._usage(connection, c.state == "queued")
            return int(connection.execute(query).scalar_one())

        return self._run(write)

    def _check_room(self, connection: sa.Connection, owner: str, size: int) -> None:
        c, bounds = db.pending.c, self.bounds
        queued = c.state == "queued"
        count, total = self._usage(connection, queued)
        mine_count, mine_total = self._usage(connection, queued & (c.owner == owner))
        share = bounds.owner_share
        checks = (
            (
                count + 1 > bounds.max_ops,
                f"{count} writes queued; queue_max_ops is {bounds.max_ops}",
            ),
            (
                total + size > bounds.max_bytes,
                f"{total} + {size} bytes queued; queue_max_bytes is {bounds.max_bytes}",
            ),
            (
                mine_count + 1 > max(1, int(bounds.max_ops * share)),
                f"this caller has {mine_count} writes queued; queue_owner_share is {share:g} "
                f"of queue_max_ops {bounds.max_ops}",
            ),
            (
                mine_total + size > max(1, int(bounds.max_bytes * share)),
                f"this caller has {mine_total} + {size} bytes queued; queue_owner_share is "
                f"{share:g} of queue_max_bytes {bounds.max_bytes}",
            ),
        )
        for full, why in checks:
            if full:
                self.queue_full += 1
                raise QueueFull(f"the eventual-write queue is full: {why}; retry later")

    @staticmethod
    def _usage(connection: sa.Connection, where: Any) -> tuple[int, int]:
        c = db.pending.c
        query = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(c.size), 0)).where(where)
        count, total = connection.execute(query).one()
        return int(count), int(total)

    def queue_usage(self) -> tuple[int, int]:
        """(writes, bytes) queued now, every target together (no body is read)."""
        where = db.pending.c.state == "queued"
        self.usage = self._run(lambda connection: self._usage(connection, where), write=False)
        return self.usage

    def pending(
        self, target: str | None = None, *, include_done: bool = False, limit: int | None = None
    ) -> list[PendingOp]:
        """Queued operations in replay order (per target site, by sequence number), without
        their bodies and headers (``body`` is empty): :meth:`load` reads one op whole."""
        c = db.pending.c
        columns = [col for col in db.pending.c if col.name not in ("body", "headers")]
        query = sa.select(*columns).order_by(c.target, c.seq)
        if target is not None:
            query = query.where(c.target == target)
        if not include_done:
            query = query.where(c.state == "queued")
        if limit is not None:
            query = query.limit(limit)
        rows = self._run(lambda c: c.execute(query).mappings().all(), write=False)
        return [op for op in (self._op_or_quarantine(row) for row in rows) if op is not None]

    def load(self, key: str) -> PendingOp | None:
        """The queued op ``key`` with its body and headers (None once gone or unreadable)."""
        query = sa.select(db.pending).where(db.pending.c.key == key)
        row = self._run(lambda c: c.execute(query).mappings().first(), write=False)
        return None if row is None else self._op_or_quarantine(row)

    def _op_or_quarantine(self, row: Any) -> PendingOp | None:
        try:
            return _op(row)
        except (ValueError, TypeError) as exc:
            key = str(row["key"])
            log.error("queued write %r quarantined: %s", key[:80], exc)
            self.quarantined += 1
            if not self.read_only:
                self._quarantine_op(key, str(exc))
            return None

    def _quarantine_op(self, key: str, reason: str) -> None:
        c = db.pending.c

        def move(connection: sa.Connection) -> None:
            row = (
                connection.execute(
                    sa.select(*(col for col in c if col.name != "body")).where(c.key == key)
                )
                .mappings()
                .first()
            )
            text = json.dumps({k: str(v) for k, v in (row or {}).items()})
            connection.execute(
                db.quarantine.insert().values(
                    kind="pending", name=key[:255], row=text, reason=reason, at=time.time()
                )
            )
            connection.execute(db.pending.delete().where(c.key == key))

        self._run(move)

    def queued_per_target(self) -> dict[str, int]:
        """How many writes are queued for each target site (counted in the database)."""
        c = db.pending.c
        query = sa.select(c.target, sa.func.count()).where(c.state == "queued").group_by(c.target)
        rows = self._run(lambda connection: connection.execute(query).all(), write=False)
        return {str(target): int(count) for target, count in rows}

    def targets(self) -> list[str]:
        c = db.pending.c
        query = sa.select(c.target).where(c.state == "queued").distinct()
        found = self._run(lambda connection: connection.execute(query).scalars().all(), write=False)
        return sorted(str(t) for t in found)

    def finish(self, key: str, *, state: str = "done", error: str = "") -> None:
        c = db.pending.c
        self._write(
            db.pending.update()
            .where(c.key == key)
            .values(state=state, last_error=error[:500], attempts=c.attempts + 1)
        )

    def retry_later(self, key: str, error: str) -> None:
        c = db.pending.c
        self._write(
            db.pending.update()
            .where(c.key == key)
            .values(attempts=c.attempts + 1, last_error=error[:500])
        )

    # -- idempotency at the receiving site ----------------------------------------------

    def applied(self, key: str) -> tuple[int, bytes, dict[str, str]] | None:
        """The remembered answer of an already applied write, or None."""
        c = db.applied.c
        query = sa.select(c.status, c.body, c.headers).where(c.key == key, c.state == "done")
        row = self._run(lambda connection: connection.execute(query).first(), write=False)
        return (int(row[0]), bytes(row[1]), json.loads(row[2])) if row else None

    def record_applied(self, key: str, status: int, body: bytes, headers: dict[str, str]) -> None:
        """Remember the answer of ``key`` (kept if one is remembered already)."""
        values = {"status": status, "body": body, "headers": json.dumps(headers)}

        def write(connection: sa.Connection) -> None:
            insert = _insert_ignore(db.applied).values(key=key, state="done", at=time.time())
            if not connection.execute(insert.values(**values)).rowcount:
                c = db.applied.c
                connection.execute(
                    db.applied.update()
                    .where(c.key == key, c.state == "applying")
                    .values(state="done", owner="", **values)
                )

        self._run(write)

    def claim_apply(self, key: str, owner: str, seconds: float) -> Claim:
        """Claim the right to apply ``key`` for ``seconds`` (one proxy of the site at a time).

        ``DONE`` with the answer when it was applied already; ``BUSY`` while another proxy
        holds an unexpired claim (or the database reports a conflict); ``MINE`` otherwise.
        A claim past its time is taken over: its owner died while applying, so the write
        may or may not have reached the backend (``taken_over``).
        """
        now = time.time()
        c = db.applied.c

        def claim_it(connection: sa.Connection) -> Claim:
            claim = _insert_ignore(db.applied).values(
                key=key,
                state="applying",
                owner=owner,
                until=now + seconds,
                status=0,
                body=b"",
                headers="{}",
                at=now,
            )
            if connection.execute(claim).rowcount:
                return Claim(ClaimState.MINE, since=now)
            row = connection.execute(
                sa.select(c.state, c.status, c.body, c.headers, c.until, c.owner, c.at).where(
                    c.key == key
                )
            ).first()
            if row is None:  # released meanwhile
                return Claim(ClaimState.BUSY)
            if row.state == "done":
                answer = (int(row.status), bytes(row.body), json.loads(row.headers))
                return Claim(ClaimState.DONE, answer, answered_at=float(row.at))
            if row.owner == owner:
                return Claim(ClaimState.MINE, since=float(row.at))
            if row.until >= now:
                return Claim(ClaimState.BUSY)
            taken = connection.execute(
                db.applied.update()
                .where(c.key == key, c.state == "applying", c.until < now)
                .values(owner=owner, until=now + seconds)
            ).rowcount
            if not taken:
                return Claim(ClaimState.BUSY)
            return Claim(
                ClaimState.MINE, taken_over=True, since=float(row.at), until=float(row.until)
            )

        return self._run(claim_it, conflict=Claim(ClaimState.BUSY))

    def complete_apply(
        self, key: str, owner: str, status: int, body: bytes, headers: dict[str, str]
    ) -> None:
        """The write claimed as ``key`` was applied: remember its answer."""
        c = db.applied.c
        self._write(
            db.applied.update()
            .where(c.key == key, c.owner == owner, c.state == "applying")
            .values(
                state="done",
                owner="",
                status=status,
                body=body,
                headers=json.dumps(headers),
                at=time.time(),
            )
        )

    def release_apply(self, key: str, owner: str) -> None:
        """Give up a claim without applying (the write failed; a retry may apply it)."""
        c = db.applied.c
        self._write(
            db.applied.delete().where(c.key == key, c.owner == owner, c.state == "applying")
        )

    def leave_in_doubt(self, key: str, owner: str) -> None:
        """Give up a claim whose write may have been applied (a create whose backend gave no
        answer, or whose lookup could not tell): the next claim of ``key``, this proxy's
        too, takes it over in doubt (``taken_over``) instead of applying it afresh."""
        c = db.applied.c
        self._write(
            db.applied.update()
            .where(c.key == key, c.owner == owner, c.state == "applying")
            .values(owner=IN_DOUBT, until=time.time())  # expired, and when it gave up
        )

    def prune_applied(self, before: float) -> int:
        """Forget the keys applied (and sets deleted) before ``before``; returns how many keys."""
        c = db.applied.c
        pruned = self._write(db.applied.delete().where(c.at < before, c.state == "done"))
        s = db.sets.c
        self._write(db.sets.delete().where(s.deleted, s.changed < before))
        return pruned

    # -- leases between the proxies of a site -------------------------------------------

    def acquire(self, name: str, owner: str, seconds: float) -> bool:
        """Take (or renew) the lease ``name`` for ``seconds``; False while another holds it."""
        now = time.time()
        c = db.leases.c

        def take(connection: sa.Connection) -> bool:
            taken = connection.execute(
                db.leases.update()
                .where(c.name == name, (c.owner == owner) | (c.until < now))
                .values(owner=owner, until=now + seconds)
            ).rowcount
            if taken:
                return True
            insert = _insert_ignore(db.leases).values(name=name, owner=owner, until=now + seconds)
            return bool(connection.execute(insert).rowcount)

        return self._run(take, conflict=False)

    def release(self, name: str, owner: str) -> None:
        c = db.leases.c
        self._write(db.leases.delete().where(c.name == name, c.owner == owner))

    def expire_dead_owners(self, prefix: str, dead: Callable[[str], bool]) -> int:
        """Expire the claims and leases of owners named ``prefix...`` that ``dead`` says died
        (a proxy of this host killed before it released them), so that the writes they held
        are taken over now rather than when their time runs out; returns how many."""
        a, c = db.applied.c, db.leases.c
        query = sa.select(a.owner).where(a.state == "applying").union(sa.select(c.owner))
        rows = self._run(lambda connection: list(connection.execute(query)), write=False)
        owners = {str(owner) for (owner,) in rows if str(owner).startswith(prefix)}
        gone = sorted(owner for owner in owners if dead(owner))
        expired, now = 0, time.time()
        for owner in gone:  # a claim's end is when it was found dead: it sent before (indoubt)
            expired += self._write(
                db.applied.update().where(a.owner == owner, a.state == "applying").values(until=now)
            )
            expired += self._write(db.leases.delete().where(c.owner == owner))
        return expired

    def release_all(self, owner: str) -> int:
        """Give up every lease ``owner`` holds (a proxy stopping cleanly); returns how many."""
        return self._write(db.leases.delete().where(db.leases.c.owner == owner))

    def holder(self, name: str) -> str | None:
        """Who holds the lease ``name`` now (None when free or expired)."""
        c = db.leases.c
        query = sa.select(c.owner).where(c.name == name, c.until >= time.time())
        value = self._run(lambda connection: connection.execute(query).scalar(), write=False)
        return None if value is None else str(value)

    # -- statements ---------------------------------------------------------------------

    def _write(self, statement: sa.Executable) -> int:
        return self._run(lambda connection: int(connection.execute(statement).rowcount))

    def _run(
        self,
        work: Callable[[sa.Connection], T],
        *,
        write: bool = True,
        conflict: T | None = None,
    ) -> T:
        """``work`` in one transaction (committed when ``write``), run again after a write
        conflict (Galera certification, SQLite busy), or answering ``conflict`` for one.
        A database that cannot be reached raises :class:`RegistryUnavailable`."""
        for attempt in range(_CONFLICT_RETRIES):
            try:
                with self.engine.begin() if write else self.engine.connect() as connection:
                    return work(connection)
            except OperationalError as exc:
                if not db.is_conflict(exc):
                    raise RegistryUnavailable(redact(self.url), exc) from exc
                if conflict is not None:
                    return conflict
                if attempt == _CONFLICT_RETRIES - 1:
                    raise RegistryUnavailable(redact(self.url), exc) from exc
                log.info("registry write conflict, retrying: %s", exc.orig)
                time.sleep(0.02 * (attempt + 1))
            except DBAPIError as exc:
                if exc.connection_invalidated or isinstance(exc, InterfaceError):
                    raise RegistryUnavailable(redact(self.url), exc) from exc
                raise
        raise AssertionError("unreachable")


def _insert_ignore(table: sa.Table) -> sa.Insert:
    """An INSERT that does nothing (rowcount 0) when the primary or a unique key is taken."""
    insert = table.insert().prefix_with("OR IGNORE", dialect="sqlite")
    return insert.prefix_with("IGNORE", dialect="mysql").prefix_with("IGNORE", dialect="mariadb")


def _load_set(record: str) -> ReplicaSet:
    """A stored record, checked as a pushed one is; raises InvalidRecord."""
    try:
        replica_set = ReplicaSet.from_json(json.loads(record))
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise InvalidRecord(f"unreadable record: {exc!r}"[:300]) from None
    check_record(replica_set)
    return replica_set


def _op(row: Any) -> PendingOp:
    """A queued op from its row (no body nor headers when they were not selected)."""
    return PendingOp(
        key=str(row["key"]),
        handle=None if row["handle"] is None else str(row["handle"]),
        target=str(row["target"]),
        service=str(row["service"]),
        method=str(row["method"]),
        path=str(row["path"]),
        body=bytes(row["body"]) if "body" in row else b"",
        headers=json.loads(str(row["headers"])) if "headers" in row else {},
        hlc=Hlc.parse(str(row["hlc"])),
        seq=int(row["seq"]),
        attempts=int(row["attempts"]),
        state=str(row["state"]),
        last_error=str(row["last_error"]),
    )
