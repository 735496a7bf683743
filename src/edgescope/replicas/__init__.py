"""Replicated resources: what ``&`` creates behaves as one resource across its sites.

Pure parts: :mod:`model` (ReplicaSet, HLC, LWW rule, PendingOp), :mod:`translate`,
:mod:`collapse`, :mod:`record`. I/O: :mod:`registry` (SQLite in the site's state dir),
:mod:`hooks` (what the proxy calls) and :mod:`peers` (record pushes, replay).

    from edgescope.replicas import Registry
    registry = Registry("/var/lib/edgescope/Paris")
    registry.lookup("a-member-id")
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
