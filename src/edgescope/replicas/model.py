"""Replicated resources: the data model and the pure clock/conflict rules. No I/O.

Neighbours: :mod:`registry` stores these objects in SQLite, :mod:`record` builds a
:class:`ReplicaSet` from an ``&`` create, :mod:`translate` and :mod:`collapse` read them,
:mod:`hooks` (a call's part in the proxy) stamps every replicated write with an :class:`Hlc`.

* :class:`ReplicaSet` -- one resource created by ``&``: its ``handle`` (the id at the first
  site of the expression) and one :class:`Member` per site (id, or ``pending``/``gone``).
* :class:`Hlc` -- a hybrid logical clock timestamp (physical ms, logical counter, site
  tiebreak). :func:`tick` stamps a local event, :func:`observe` folds in a remote stamp.
* :func:`lww_wins` -- the one conflict rule, applied identically at every site:
  a write to a replica set is applied iff its stamp is greater than the last applied one.
* :class:`PendingOp` -- a write queued (eventual mode) for a member site that was unreachable.

    >>> a = tick(None, now_ms=1000, site="Paris")
    >>> b = observe(a, Hlc(1000, 4, "Corte"), now_ms=999, site="Paris")
    >>> b, lww_wins(b, a), lww_wins(a, b)
    (Hlc(wall_ms=1000, counter=5, site='Paris'), True, False)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any

MAX_WALL_MS = 9_999_999_999_999
"""The greatest wall time a stamp may carry (13 digits: the width :meth:`Hlc.encode` writes)."""
MAX_COUNTER = 999_999
"""The greatest logical counter (6 digits): past it, :func:`tick` and :func:`observe` move to
the next millisecond, so this site never writes a stamp its own :meth:`Hlc.parse` refuses."""
MAX_STAMP_SITE = 64


@dataclass(frozen=True, order=True, slots=True)
class Hlc:
    """Hybrid logical clock stamp; the field order is the total order (site breaks ties)."""

    wall_ms: int
    counter: int
    site: str

    def encode(self) -> str:
        """``0000000001000.000005.Paris``: sorts as text in the same order as the stamps."""
        return f"{self.wall_ms:013d}.{self.counter:06d}.{self.site}"

    @classmethod
    def parse(cls, text: str) -> Hlc:
        """Inverse of :meth:`encode`; raises ValueError on anything else."""
        wall, sep1, rest = text.partition(".")
        counter, sep2, site = rest.partition(".")
        digits = wall.isascii() and wall.isdigit() and counter.isascii() and counter.isdigit()
        if not (sep1 and sep2 and digits and site and site.isprintable()):
            raise ValueError(f"not an HLC stamp: {text[:80]!r}")
        if len(wall) > 13 or len(counter) > 6 or len(site) > MAX_STAMP_SITE:
            raise ValueError(
                f"HLC stamp out of range: {text[:80]!r} (at most {MAX_WALL_MS} ms, "
                f"counter {MAX_COUNTER}, site {MAX_STAMP_SITE} characters)"
            )
        return cls(int(wall), int(counter), site)


def tick(last: Hlc | None, *, now_ms: int, site: str) -> Hlc:
    """The stamp of a new local event: after ``last``, and at least the physical time."""
    if last is None or now_ms > last.wall_ms:
        return Hlc(now_ms, 0, site)
    return _next(last.wall_ms, last.counter + 1, site)


def observe(last: Hlc | None, remote: Hlc, *, now_ms: int, site: str) -> Hlc:
    """The local clock after receiving ``remote``: greater than both ``last`` and ``remote``."""
    wall = max(now_ms, remote.wall_ms, last.wall_ms if last else 0)
    counter = -1
    if last is not None and last.wall_ms == wall:
        counter = last.counter
    if remote.wall_ms == wall:
        counter = max(counter, remote.counter)
    return _next(wall, counter + 1, site)


def _next(wall: int, counter: int, site: str) -> Hlc:
    """``Hlc(wall, counter)``, or the next millisecond once the counter is used up."""
    if counter > MAX_COUNTER:
        return Hlc(wall + 1, 0, site)
    return Hlc(wall, counter, site)


def lww_wins(incoming: Hlc, applied: Hlc | None) -> bool:
    """Last-writer-wins: apply ``incoming`` iff no write with a greater stamp was applied."""
    return applied is None or incoming > applied


class MemberState(enum.StrEnum):
    PRESENT = "present"
    PENDING = "pending"
    """The create is queued for this site (eventual mode); no id yet."""
    GONE = "gone"
    """Deleted at this site only; the other members live on."""


@dataclass(frozen=True, slots=True)
class Member:
    site: str
    id: str | None
    state: MemberState = MemberState.PRESENT


@dataclass(frozen=True, slots=True)
class ReplicaSet:
    """One logical resource made of one resource per site."""

    handle: str
    """The id at the first site of the creating expression; what merged lists show."""
    service: str
    """Canonical service type, e.g. ``identity``."""
    collection: str
    """The path the create was POSTed to, e.g. ``/v3/users``."""
    members: tuple[Member, ...]
    version: Hlc | None = None
    """Stamp of the last change of this record; the greater version wins between registries."""

    def member(self, site: str) -> Member | None:
        return next((m for m in self.members if m.site == site), None)

    def member_id(self, site: str) -> str | None:
        """The live id at ``site``, or None (not a member, pending or gone)."""
        member = self.member(site)
        if member is None or member.state is not MemberState.PRESENT:
            return None
        return member.id

    @property
    def ids(self) -> frozenset[str]:
        """Every id this set is known by: the handle and each member's id."""
        return frozenset({self.handle, *(m.id for m in self.members if m.id)})

    @property
    def sites(self) -> tuple[str, ...]:
        return tuple(m.site for m in self.members)

    @property
    def all_gone(self) -> bool:
        return all(m.state is MemberState.GONE for m in self.members)

    def versioned(self, version: Hlc) -> ReplicaSet:
        return replace(self, version=version)

    def with_member(self, site: str, id: str | None, state: MemberState) -> ReplicaSet:
        new = Member(site, id, state)
        if self.member(site) is None:
            return replace(self, members=(*self.members, new))
        return replace(self, members=tuple(new if m.site == site else m for m in self.members))

    def to_json(self) -> dict[str, Any]:
        return {
            "handle": self.handle,
            "service": self.service,
            "collection": self.collection,
            "members": [{"site": m.site, "id": m.id, "state": m.state.value} for m in self.members],
            "version": self.version.encode() if self.version else None,
        }

    @classmethod
    def from_json(cls, doc: Any) -> ReplicaSet:
        """Raises ValueError (or KeyError/TypeError, mapped by callers) on a malformed record."""
        if not isinstance(doc, dict):
            raise ValueError("a replica set record must be a JSON object")
        members = tuple(
            Member(
                str(m["site"]), None if m["id"] is None else str(m["id"]), MemberState(m["state"])
            )
            for m in doc["members"]
        )
        version = doc.get("version")
        return cls(
            handle=str(doc["handle"]),
            service=str(doc["service"]),
            collection=str(doc["collection"]),
            members=members,
            version=Hlc.parse(version) if version else None,
        )


@dataclass(frozen=True, slots=True)
class PendingOp:
    """A write to replay at ``target`` once it is reachable (eventual mode)."""

    key: str
    """Idempotency key: the target proxy applies a key at most once and remembers the answer."""
    handle: str | None
    """The replica set, or None for a create whose set has no handle yet."""
    target: str
    service: str
    method: str
    path: str
    """As the client sent it (handle form): translated for ``target`` at replay time."""
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    hlc: Hlc = Hlc(0, 0, "")
    seq: int = 0
    """Queue position, assigned by the registry: replay follows it per target site."""
    attempts: int = 0
    state: str = "queued"
    """``queued``, then ``done`` or ``failed`` (a definitive refusal, kept for inspection)."""
    last_error: str = ""

    @property
    def is_create(self) -> bool:
        return self.method == "POST"

    def summary(self) -> dict[str, Any]:
        """What ``edgescope replicas pending`` and ``GET /edgescope/replicas`` show (no body or
        headers: a queued write keeps the caller's token)."""
        return {
            "seq": self.seq,
            "key": self.key,
            "target": self.target,
            "handle": self.handle,
            "method": self.method,
            "path": self.path,
            "attempts": self.attempts,
            "last_error": self.last_error,
        }
