"""Collapse the members of one replica set in a merged ``&`` list into one item. Pure.

Neighbours: the proxy's :mod:`edgescope.proxy.merge` annotates each item of a merged
collection with its origin (``"edgescope:site"``); :mod:`hooks` then passes the merged body
here with a lookup into the :mod:`registry`.

* Items that are members of one replica set (the item's ``id`` is that set's live id at the
  item's origin site) become ONE item, at the position of the first member: its ``id`` is
  the set's handle, ``edgescope:site`` names every member site (``"Paris & Corte"``), and
  ``edgescope:replicas`` maps each member site to its own id.
* Every other item stays as it was, with its origin: nothing is dropped.

    >>> from edgescope.replicas.model import Member, ReplicaSet
    >>> members = (Member("Paris", "5f0a9e21"), Member("Corte", "c93e7b10"))
    >>> s = ReplicaSet("5f0a9e21", "identity", "/v3/users", members)
    >>> doc = {"users": [{"id": "5f0a9e21", "edgescope:site": "Paris"},
    ...                  {"id": "c93e7b10", "edgescope:site": "Corte"},
    ...                  {"id": "c7d4a822", "edgescope:site": "Corte"}]}
    >>> [u["id"] for u in collapse_collection(doc, {"5f0a9e21": s, "c93e7b10": s}.get)["users"]]
    ['5f0a9e21', 'c7d4a822']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgescope.proxy.merge import ORIGIN_FIELD
from edgescope.replicas.model import ReplicaSet

REPLICAS_FIELD = "edgescope:replicas"
"""Added to a collapsed item: ``{site: member id}`` for every member found in the list."""
SITE_JOIN = " & "

Lookup = Callable[[str], ReplicaSet | None]


def collapse_collection(doc: dict[str, Any], lookup: Lookup) -> dict[str, Any]:
    """A copy of the merged ``doc`` with each replica set's members collapsed into one item."""
    out = dict(doc)
    for key, value in doc.items():
        if isinstance(value, list) and any(
            isinstance(item, dict) and ORIGIN_FIELD in item for item in value
        ):
            out[key] = collapse_items(value, lookup)
    return out


def collapse_items(items: list[Any], lookup: Lookup) -> list[Any]:
    """The list with replica members merged into their first member's position."""
    result: list[Any] = []
    slot: dict[str, int] = {}
    for item in items:
        replica_set = _member_of(item, lookup)
        if replica_set is None:
            result.append(item)
            continue
        site, id_ = item[ORIGIN_FIELD], item["id"]
        if replica_set.handle not in slot:
            slot[replica_set.handle] = len(result)
            merged = {**item, "id": replica_set.handle, ORIGIN_FIELD: site}
            merged[REPLICAS_FIELD] = {site: id_}
            result.append(merged)
            continue
        merged = result[slot[replica_set.handle]]
        merged[REPLICAS_FIELD] = {**merged[REPLICAS_FIELD], site: id_}
        merged[ORIGIN_FIELD] = SITE_JOIN.join(merged[REPLICAS_FIELD])
    return result


def _member_of(item: Any, lookup: Lookup) -> ReplicaSet | None:
    if not isinstance(item, dict):
        return None
    id_, site = item.get("id"), item.get(ORIGIN_FIELD)
    if not isinstance(id_, str) or not isinstance(site, str):
        return None
    replica_set = lookup(id_)
    if replica_set is None or replica_set.member_id(site) != id_:
        return None
    return replica_set
