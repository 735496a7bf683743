"""The replica registry: a small durable SQLite store in the site's state dir.

Neighbours: :mod:`hooks` writes here (replica sets received from peers or recorded after an
``&`` create, queued writes for unreachable members, idempotency keys of applied writes,
the last applied stamp per set) and reads through the in-memory index, so the per-request
lookups that :mod:`translate` and :mod:`collapse` need never touch the disk.
``edgescope replicas list|show|pending`` opens the same file read-only.

The methods are blocking (stdlib ``sqlite3``, WAL journal, ``synchronous=FULL``); the proxy
calls them through ``asyncio.to_thread``. Each write is one transaction, committed before the
method returns, so a restarted proxy finds every queued operation.

    >>> import tempfile
    >>> from edgescope.replicas.model import Member
    >>> registry = Registry(tempfile.mkdtemp())
    >>> members = (Member("Paris", "p1"), Member("Corte", "c9"))
    >>> s = ReplicaSet("p1", "identity", "/v3/users", members)
    >>> registry.put_set(s)
    True
    >>> registry.lookup("c9").handle
    'p1'
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from edgescope.replicas.model import Hlc, MemberState, PendingOp, ReplicaSet

FILENAME = "replicas.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sets (
    handle TEXT PRIMARY KEY, record TEXT NOT NULL, last_write TEXT
);
CREATE TABLE IF NOT EXISTS pending (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, target TEXT NOT NULL,
    handle TEXT, service TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL,
    body BLOB NOT NULL, headers TEXT NOT NULL, hlc TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued', attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS pending_by_target ON pending (target, state, seq);
CREATE TABLE IF NOT EXISTS applied (
    key TEXT PRIMARY KEY, status INTEGER NOT NULL, body BLOB NOT NULL, headers TEXT NOT NULL,
    at REAL NOT NULL
);
"""


class Registry:
    """One site's replica sets, pending queue and applied idempotency keys."""

    def __init__(self, state_dir: str | Path, *, read_only: bool = False) -> None:
        directory = Path(state_dir)
        self.path = directory / FILENAME
        if read_only:
            uri = f"file:{self.path}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        else:
            directory.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._sets: dict[str, ReplicaSet] = {}
        self._by_id: dict[str, str] = {}
        for (record,) in self._db.execute("SELECT record FROM sets"):
            self._index(ReplicaSet.from_json(json.loads(record)))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- replica sets (reads are in memory) ---------------------------------------------

    def lookup(self, handle_or_id: str) -> ReplicaSet | None:
        """The set known by this handle or member id, if any."""
        handle = self._by_id.get(handle_or_id)
        return self._sets.get(handle) if handle is not None else None

    @property
    def has_sets(self) -> bool:
        return bool(self._sets)

    def sets(self) -> list[ReplicaSet]:
        return sorted(self._sets.values(), key=lambda s: (s.service, s.handle))

    def put_set(self, replica_set: ReplicaSet) -> bool:
        """Store ``replica_set`` unless a record with a greater version is already here."""
        with self._lock:
            current = self._sets.get(replica_set.handle)
            if (
                current is not None
                and current.version is not None
                and (replica_set.version is None or replica_set.version < current.version)
            ):
                return False
            with self._db:
                self._db.execute(
                    "INSERT INTO sets (handle, record) VALUES (?, ?) "
                    "ON CONFLICT(handle) DO UPDATE SET record = excluded.record",
                    (replica_set.handle, json.dumps(replica_set.to_json())),
                )
            if current is not None:
                self._unindex(current)
            self._index(replica_set)
            return True

    def mark_gone(self, handle: str, site: str, version: Hlc) -> ReplicaSet | None:
        """Record that ``site``'s member was deleted; returns the updated set."""
        current = self.lookup(handle)
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
        with self._lock:
            with self._db:
                self._db.execute("DELETE FROM sets WHERE handle = ?", (handle,))
            current = self._sets.pop(handle, None)
            if current is not None:
                self._unindex(current)

    def last_write(self, handle: str) -> Hlc | None:
        """The stamp of the last write applied to this set at this site (the LWW reference)."""
        with self._lock:
            row = self._db.execute(
                "SELECT last_write FROM sets WHERE handle = ?", (handle,)
            ).fetchone()
        return Hlc.parse(row[0]) if row and row[0] else None

    def set_last_write(self, handle: str, hlc: Hlc) -> None:
        with self._lock, self._db:
            self._db.execute(
                "UPDATE sets SET last_write = ? WHERE handle = ? "
                "AND (last_write IS NULL OR last_write < ?)",
                (hlc.encode(), handle, hlc.encode()),
            )

    def _index(self, replica_set: ReplicaSet) -> None:
        self._sets[replica_set.handle] = replica_set
        for id_ in replica_set.ids:
            self._by_id[id_] = replica_set.handle

    def _unindex(self, replica_set: ReplicaSet) -> None:
        for id_ in replica_set.ids:
            if self._by_id.get(id_) == replica_set.handle:
                del self._by_id[id_]

    # -- pending queue (eventual mode) --------------------------------------------------

    def enqueue(self, op: PendingOp) -> int:
        """Queue ``op`` durably; returns its sequence number (an existing key is kept)."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO pending (key, target, handle, service, method, path, "
                "body, headers, hlc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    op.key,
                    op.target,
                    op.handle,
                    op.service,
                    op.method,
                    op.path,
                    op.body,
                    json.dumps(op.headers),
                    op.hlc.encode(),
                ),
            )
            row = self._db.execute("SELECT seq FROM pending WHERE key = ?", (op.key,)).fetchone()
        return int(row[0])

    def pending(self, target: str | None = None, *, include_done: bool = False) -> list[PendingOp]:
        """Queued operations in replay order (per target site, by sequence number)."""
        sql = "SELECT * FROM pending WHERE 1=1"
        args: list[str] = []
        if target is not None:
            sql += " AND target = ?"
            args.append(target)
        if not include_done:
            sql += " AND state = 'queued'"
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY target, seq", args).fetchall()
        return [_op(row) for row in rows]

    def targets(self) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT target FROM pending WHERE state = 'queued'"
            ).fetchall()
        return sorted(r[0] for r in rows)

    def finish(self, key: str, *, state: str = "done", error: str = "") -> None:
        with self._lock, self._db:
            self._db.execute(
                "UPDATE pending SET state = ?, last_error = ?, attempts = attempts + 1 "
                "WHERE key = ?",
                (state, error, key),
            )

    def retry_later(self, key: str, error: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                "UPDATE pending SET attempts = attempts + 1, last_error = ? WHERE key = ?",
                (error[:500], key),
            )

    def set_handle(self, key_prefix: str, handle: str) -> None:
        """Give queued ops of one create (keys ``<prefix>:<site>``) their set's handle."""
        with self._lock, self._db:
            self._db.execute(
                "UPDATE pending SET handle = ? WHERE key LIKE ? AND handle IS NULL",
                (handle, key_prefix.replace("%", "") + ":%"),
            )

    # -- idempotency at the receiving site ----------------------------------------------

    def applied(self, key: str) -> tuple[int, bytes, dict[str, str]] | None:
        """The remembered answer of an already applied write, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT status, body, headers FROM applied WHERE key = ?", (key,)
            ).fetchone()
        return (int(row[0]), bytes(row[1]), json.loads(row[2])) if row else None

    def record_applied(self, key: str, status: int, body: bytes, headers: dict[str, str]) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO applied (key, status, body, headers, at) "
                "VALUES (?, ?, ?, ?, ?)",
                (key, status, body, json.dumps(headers), time.time()),
            )

    def prune_applied(self, before: float) -> int:
        """Forget the keys applied before ``before`` (epoch seconds); returns how many."""
        with self._lock, self._db:
            return self._db.execute("DELETE FROM applied WHERE at < ?", (before,)).rowcount


def _op(row: Any) -> PendingOp:
    seq, key, target, handle, service, method, path, body, headers, hlc = row[:10]
    state, attempts, last_error = row[10:13]
    return PendingOp(
        key=str(key),
        handle=None if handle is None else str(handle),
        target=str(target),
        service=str(service),
        method=str(method),
        path=str(path),
        body=bytes(body),
        headers=json.loads(str(headers)),
        hlc=Hlc.parse(str(hlc)),
        seq=int(seq),
        attempts=int(attempts),
        state=str(state),
        last_error=str(last_error),
    )
