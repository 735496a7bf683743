"""The campaign's checker: a pure function from the history and what the sites hold to anomalies.

It knows nothing of edgescope: the history (:mod:`history`) says what each client typed and
what it was told; :class:`Observed` is what each site's own services list after the heal and
quiescence (asked at each site, by its admin, with no scope), whether each proxy serves, and
how many writes each still has queued. Every resource a run creates has a unique name, so the
checker follows each name through its operations:

* ``missing-member``: an acknowledged create lacks a member, or an acknowledged ``|`` boot is
  nowhere;
* ``duplicate``: a name held twice at one site (a write applied twice, e.g. a replayed
  eventual create), or a ``|`` boot held more than once anywhere (it must run at one site);
* ``outside-set``: a name held at a site its scope did not name;
* ``orphan``: a refused strict create or ``|`` boot left something behind;
* ``partial``: an unacknowledged write (refused eventual, client gave up) left some members
  but not all (strict undoes, eventual replays: after quiescence it is all or nothing);
  ``partial-after-crash`` when the proxy it was typed at was stopped mid-call (a known limit,
  :data:`KNOWN`);
* ``lost-delete``: an acknowledged delete, yet the name is still held somewhere;
* ``lost-update``: an acknowledged update is not what a member holds (writes to one name
  come from one client, one after the other, so the last acknowledged one must win);
* ``local-failed``: a 1-DC call failed (lost, or refused other than by the service's own 4xx)
  while no fault touched its own site's services;
* ``unrecorded``: a name of the run that no operation created;
* ``proxy-down`` / ``queue-not-drained``: after quiescence, a proxy does not serve, or still
  holds queued writes.

Each anomaly names the operations (their ``seq``) that led to it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.campaign.history import OK, REFUSED, UNKNOWN, Fault, Op

LOCAL_FAULTS = {
    # fault kind (and service) -> the resources whose 1-DC calls it may fail at its site
    "proxy-kill": {"user", "image"},
    "clock-step": {"user", "image"},  # the proxy is restarted (with its clock stepped)
    "service-restart glance": {"image"},
    "service-restart keystone": {"user", "image"},  # glance checks tokens with keystone
}
"""Faults of a site's own stack: a 1-DC call there may fail during them. Partitions and loss
bursts are remote faults: a 1-DC call must survive them; so is a locked replica database (a
1-DC call does not replicate)."""


CRASHES = {"proxy-kill", "clock-step"}
"""Faults that stop a site's proxy (SIGKILL; the clock step restarts it)."""
KNOWN = {
    "partial-after-crash": "a write whose own proxy was stopped mid-call is queued for its "
    "other members only once every branch answered (replicas/hooks.py record): the members "
    "not yet written stay without it (no write-ahead intent); docs/benchmarks.md",
}
"""Anomaly kinds that are known limits of edgescope, still reported, each with its reason."""


@dataclass(frozen=True)
class Seen:
    """One resource a site's own service lists."""

    resource: str
    site: str
    name: str
    id: str
    value: str | None = None


@dataclass(frozen=True)
class Observed:
    """The sites' real state after heal and quiescence."""

    seen: Sequence[Seen]
    serving: Mapping[str, bool] = field(default_factory=dict)
    pending: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Anomaly:
    kind: str
    resource: str
    name: str
    sites: tuple[str, ...]
    detail: str
    ops: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check(ops: Iterable[Op], faults: Iterable[Fault], observed: Observed) -> list[Anomaly]:
    """Every anomaly of the run, ordered by kind then name."""
    ops, faults = list(ops), list(faults)
    by_name: dict[tuple[str, str], list[Op]] = defaultdict(list)
    for op in ops:
        by_name[op.resource, op.name].append(op)
    held: dict[tuple[str, str], dict[str, list[Seen]]] = defaultdict(lambda: defaultdict(list))
    for seen in observed.seen:
        held[seen.resource, seen.name][seen.site].append(seen)
    found: list[Anomaly] = []
    crashed = {op.seq for op in ops if _origin_crashed(op, faults)}
    for key in sorted(set(by_name) | set(held)):
        name_ops = sorted(by_name.get(key, []), key=_order)
        found += _check_name(key, name_ops, held.get(key, {}), crashed)
    found += _local_failures(ops, faults)
    found += [
        Anomaly("proxy-down", "", "", (site,), f"{site}'s proxy does not serve after the heal", ())
        for site, up in sorted(observed.serving.items())
        if not up
    ]
    found += [
        Anomaly("queue-not-drained", "", "", (site,), f"{site} still queues {n} writes", ())
        for site, n in sorted(observed.pending.items())
        if n
    ]
    return sorted(found, key=lambda a: (a.kind, a.resource, a.name, a.sites))


def _order(op: Op) -> tuple[float, int]:
    return (op.start, op.seq)


def _origin_crashed(op: Op, faults: list[Fault]) -> bool:
    """The proxy the call was typed at was stopped while the call was in flight."""
    return op.outcome == UNKNOWN and any(
        f.kind in CRASHES and op.at in f.sites and f.start <= op.end and op.start <= f.start
        for f in faults
    )


def _check_name(
    key: tuple[str, str], ops: list[Op], held: Mapping[str, list[Seen]], crashed: set[int]
) -> list[Anomaly]:
    resource, name = key
    at = {site: len(rows) for site, rows in held.items() if rows}
    seqs = tuple(op.seq for op in ops)

    def anomaly(kind: str, sites: Iterable[str], detail: str) -> Anomaly:
        return Anomaly(kind, resource, name, tuple(sorted(sites)), detail, seqs)

    creates = [op for op in ops if op.kind in ("create", "boot")]
    if not creates:
        return [anomaly("unrecorded", at, f"held at {_where(at)}; no operation created it")]
    create = creates[0]
    members = set(create.sites)
    if create.kind == "boot":
        return _check_boot(create, at, anomaly)
    found = []
    if twice := [s for s, n in at.items() if n > 1]:
        found.append(anomaly("duplicate", twice, f"held {_where(at)} ({create.mode} create)"))
    if outside := set(at) - members:
        found.append(anomaly("outside-set", outside, f"held {_where(at)}, scope {create.scope}"))
    deletes = [op for op in ops if op.kind == "delete"]
    if any(op.outcome == OK for op in deletes):
        if at:
            found.append(anomaly("lost-delete", at, f"deleted (acknowledged), held {_where(at)}"))
        return found
    if deletes:
        return found  # an unacknowledged delete: held or gone, either may be right
    present = members & set(at)
    if create.outcome == OK:
        if missing := members - present:
            found.append(anomaly("missing-member", missing, f"acknowledged, held {_where(at)}"))
        else:
            found += _lost_updates(ops, held, anomaly)
    elif create.outcome == REFUSED and create.mode == "strict":
        if at:
            found.append(anomaly("orphan", at, f"refused strict create, held {_where(at)}"))
    elif present and present != members:
        kind = "partial-after-crash" if create.seq in crashed else "partial"
        found.append(anomaly(kind, members - present, f"unacknowledged, held {_where(at)}"))
    return found


def _check_boot(boot: Op, at: Mapping[str, int], anomaly: Any) -> list[Anomaly]:
    """A ``|`` boot: one server at one of the scope's sites, or none if refused."""
    found = []
    if outside := set(at) - set(boot.sites):
        found.append(anomaly("outside-set", outside, f"held {_where(at)}, scope {boot.scope}"))
    total = sum(at.values())
    if total > 1:
        found.append(anomaly("duplicate", at, f"one '|' boot, held {_where(at)}"))
    if boot.outcome == OK and not total:
        found.append(anomaly("missing-member", boot.sites, "acknowledged '|' boot, held nowhere"))
    if boot.outcome == REFUSED and total:
        found.append(anomaly("orphan", at, f"refused '|' boot, held {_where(at)}"))
    return found


def _lost_updates(ops: list[Op], held: Mapping[str, list[Seen]], anomaly: Any) -> list[Anomaly]:
    """After the last acknowledged update, the value held must be it, or a later attempt's."""
    updates = [op for op in ops if op.kind == "update"]
    acked = [i for i, op in enumerate(updates) if op.outcome == OK]
    if not acked:
        return []
    allowed = {op.value for op in updates[acked[-1] :]}
    wrong = {s: rows[0].value for s, rows in held.items() if rows and rows[0].value not in allowed}
    if not wrong:
        return []
    detail = f"expected {sorted(map(str, allowed))}, held {wrong}"
    return [anomaly("lost-update", wrong, detail)]


def _local_failures(ops: list[Op], faults: list[Fault]) -> list[Anomaly]:
    found = []
    for op in ops:
        if op.replicated or op.outcome == OK or op.error.startswith("HTTP 4"):
            continue  # (a service's own 4xx, e.g. a volume still being created, is no fault's)
        excused = any(
            f.overlaps(op) and op.at in f.sites and op.resource in LOCAL_FAULTS.get(_key(f), ())
            for f in faults
        )
        if not excused:
            detail = f"1-DC {op.kind} at {op.at} {op.outcome}: {op.error[:200]}"
            found.append(Anomaly("local-failed", op.resource, op.name, (op.at,), detail, (op.seq,)))
    return found


def _key(fault: Fault) -> str:
    service = fault.detail.get("service")
    return f"{fault.kind} {service}" if service else fault.kind


def _where(at: Mapping[str, int]) -> str:
    return ", ".join(f"{s}×{n}" for s, n in sorted(at.items())) or "nowhere"


def summary(anomalies: Sequence[Anomaly], examples: int = 3) -> dict[str, Any]:
    """Anomalies by kind, with a few examples of each."""
    kinds: dict[str, list[Anomaly]] = defaultdict(list)
    for a in anomalies:
        kinds[a.kind].append(a)
    return {
        k: {"count": len(v), "examples": [a.as_dict() for a in v[:examples]]}
        for k, v in sorted(kinds.items())
    }
