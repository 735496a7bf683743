"""Replicated resources: what ``&`` creates behaves as one resource across its sites.

An extension of the proxy (:mod:`extension`), joined to each call through the proxy's
hooks (:mod:`hooks`). Pure parts: :mod:`model` (ReplicaSet, HLC, LWW rule, PendingOp),
:mod:`translate`, :mod:`collapse`, :mod:`record`. I/O: :mod:`registry` (SQLite in the
site's state dir), :mod:`guard` (writes applied once, LWW), :mod:`peers` (record pushes,
the internal endpoints, replay of queued writes).

    from edgescope.replicas.extension import Replicas
    proxy = SiteProxy(config, extensions=[Replicas.open("Paris", "/var/lib/edgescope/Paris")])
"""

from edgescope.replicas.model import (
    Hlc,
    Member,
    MemberState,
    PendingOp,
    ReplicaSet,
    lww_wins,
    observe,
    tick,
)
from edgescope.replicas.registry import Registry

__all__ = [
    "Hlc",
    "Member",
    "MemberState",
    "PendingOp",
    "Registry",
    "ReplicaSet",
    "lww_wins",
    "observe",
    "tick",
]
