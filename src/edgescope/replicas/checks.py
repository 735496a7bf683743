"""Who may push which replica set record: the membership rules of a peer's push. Pure.

Neighbours: :mod:`peers` receives ``POST /edgescope/replicas/sets`` from a signed peer,
parses it with :func:`parse_push`, reads the set stored under the same handle, and stores
the record only if :func:`check_push` passes; the :mod:`registry` then refuses ids that
belong to another set. The rules read the STORED set, not only the pushed document:

* the pushing peer is a member of the pushed set, and of the stored one when there is one;
* this site is a member of the pushed set (a site keeps only the sets it is part of);
* a stored set keeps its service, collection and member sites;
* a member's id changes only while it is pending with no id yet (a queued create got its
  answer), and no push makes a member pending again: no peer repoints a member (this
  site's least of all) to another resource, directly or in two pushes.

    >>> from edgescope.replicas.model import Member, ReplicaSet
    >>> members = (Member("Paris", "5f0a9e21"), Member("Corte", "c1b6f053"))
    >>> s = ReplicaSet("5f0a9e21", "image", "/images", members)
    >>> check_push("Lyon", "Paris", s, None, deleting=False)
    Traceback (most recent call last):
    ...
    edgescope.errors.Refused: Lyon may push records of sets it is a member of only
"""

from __future__ import annotations

import json

from edgescope.errors import Refused
from edgescope.replicas.model import MemberState, ReplicaSet
from edgescope.replicas.validate import InvalidRecord, check_record


def parse_push(data: bytes) -> tuple[bool, ReplicaSet]:
    """(deleting, record) of a push body ``{"set": {...}}`` or ``{"delete": {...}}``;
    raises InvalidRecord for anything else or a record that fails :func:`check_record`."""
    try:
        payload = json.loads(data)
        if not isinstance(payload, dict) or len(payload) != 1:
            raise InvalidRecord('expected {"set": {...}} or {"delete": {...}}')
        [(kind, doc)] = payload.items()
        if kind not in ("set", "delete"):
            raise InvalidRecord(f'expected "set" or "delete", got {str(kind)[:40]!r}')
        replica_set = ReplicaSet.from_json(doc)
    except InvalidRecord:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise InvalidRecord(f"{type(exc).__name__}: {str(exc)[:200]}") from None
    check_record(replica_set)
    return kind == "delete", replica_set


def check_push(
    peer: str, site: str, pushed: ReplicaSet, stored: ReplicaSet | None, *, deleting: bool
) -> None:
    """Raise :class:`Refused` unless ``peer`` may push ``pushed`` to ``site``: 403 (not a
    member) or 409 (it changes what it may not)."""
    if peer not in pushed.sites:
        raise Refused(403, f"{peer} may push records of sets it is a member of only")
    if stored is not None and peer not in stored.sites:
        raise Refused(
            403, f"{peer} is not a member of set {stored.handle} as {site} has it recorded"
        )
    if site not in pushed.sites:
        raise Refused(403, f"{site} is not a member of set {pushed.handle}")
    if stored is None:
        return
    same = (stored.service, stored.collection, sorted(stored.sites))
    if same != (pushed.service, pushed.collection, sorted(pushed.sites)):
        raise Refused(
            409,
            f"set {stored.handle} is {stored.service} {stored.collection} at "
            f"{', '.join(stored.sites)} here: a push may not change its service, "
            "collection or members",
        )
    if deleting:
        return
    for before in stored.members:
        after = pushed.member(before.site)
        assert after is not None
        pending = MemberState.PENDING
        if after.state is pending and before.state is not pending:
            raise Refused(
                409,
                f"{peer} may not mark {before.site}'s member of set {stored.handle} pending "
                f"again (it is {before.state.value} here): a member leaves pending only once",
            )
        if after.id == before.id or (before.state is pending and before.id is None):
            continue  # a pending member with no id yet gets its id once, from the replay
        raise Refused(
            409,
            f"{peer} may not change {before.site}'s member of set {stored.handle} "
            f"({before.id} to {after.id})",
        )
