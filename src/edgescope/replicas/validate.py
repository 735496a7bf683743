"""What a replica set record must look like before it is stored. Pure.

Neighbours: :mod:`peers` checks every record a peer pushes with :func:`check_record` (and
the membership rules of :func:`check_push`), :mod:`record` checks the ids a create answered
with, :mod:`registry` checks every stored row when it loads it (a bad one is quarantined).

A replica id is looked up in every path segment and JSON string of the calls that pass
through the proxy, and replaced by the branch site's own id: an id that is also a word of
an API's paths (``detail`` in ``GET /servers/detail``) would reroute calls that never named
a replica set, and so would a value of a JSON field (``"disk_format": "qcow2"``, ``"1"``). So
an id must have the shape of a generated id:

* 1 to 255 characters among ``A-Z a-z 0-9 - _ . ~ : @ +`` (one path segment, nothing to
  quote), not ``.`` or ``..``;
* only hex digits and dashes, with at least :data:`MIN_ID_DIGITS` hex digits: a UUID
  (nova, glance, neutron, cinder), a 32-hex id (keystone) or a long number; never a word or
  value such as ``qcow2``, ``IPv4``, ``x86_64``, ``sha512`` or ``1`` (issue 20);
* not a version segment (``v2.1``, ``v3``), not an extension's word (``os-*``, ``OS-*``),
  not one of :data:`RESERVED_WORDS` (collection actions and sub-resources with a digit).

    >>> check_id("3f2a9c1e-77b0-4c4e-9d55-6f0f8e1d2a10")
    >>> check_id("qcow2")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    edgescope.replicas.validate.InvalidRecord: 'qcow2' is not a replica id: an id is ...
    >>> check_id("detail")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    edgescope.replicas.validate.InvalidRecord: 'detail' is not a replica id: a reserved ...
"""

from __future__ import annotations

import re

from edgescope.replicas.model import ReplicaSet

MAX_ID_LENGTH = 255
MAX_MEMBERS = 64
MAX_FIELD = 255
_ID = re.compile(r"[A-Za-z0-9._~:@+-]{1,255}")
MIN_ID_DIGITS = 8
"""The fewest hex digits of an id: a UUID has 32, a keystone id 32, the value ``1`` one."""
_GENERATED = re.compile(r"[0-9A-Fa-f-]+")
_HEX = frozenset("0123456789abcdefABCDEF")
_VERSION = re.compile(r"v\d+(\.\d+)*", re.IGNORECASE)
RESERVED_WORDS = frozenset(
    {
        # collection actions: GET /servers/detail, /volumes/detail, /flavors/detail ...
        "detail",
        "details",
        "summary",
        "action",
        "actions",
        "default",
        "defaults",
        "statistics",
        # words of API paths that carry a digit (keystone /v3/ec2tokens, /v3/s3tokens ...)
        "ec2tokens",
        "s3tokens",
        "ec2-credentials",
        "v2.0",
        "v2.1",
        "2.0",
        "2.1",
    }
)
"""Path words that route as a collection action or an API's own word; ids never."""


class InvalidRecord(ValueError):
    """A replica set record that must not be stored (a 400 for a peer's push)."""


def check_id(text: str) -> None:
    """Raise :class:`InvalidRecord` unless ``text`` looks like a resource id."""
    why = _id_problem(text)
    if why:
        raise InvalidRecord(f"{text[:80]!r} is not a replica id: {why}")


def _id_problem(text: str) -> str:
    if not _ID.fullmatch(text) or text in (".", ".."):
        return "ids are 1 to 255 characters among A-Z a-z 0-9 - _ . ~ : @ +"
    lower = text.lower()
    if lower in RESERVED_WORDS:
        return "a reserved path word (it routes as a collection action)"
    if _VERSION.fullmatch(text) or lower.startswith("os-"):
        return "a word of API paths (a version or an extension)"
    if not _GENERATED.fullmatch(text) or sum(c in _HEX for c in text) < MIN_ID_DIGITS:
        return (
            f"an id is generated: only hex digits and dashes, at least {MIN_ID_DIGITS} hex"
            " digits (a UUID, a hex or a decimal id); words and values such as qcow2,"
            " IPv4 or 1 are not"
        )
    return ""


def check_record(replica_set: ReplicaSet) -> None:
    """Raise :class:`InvalidRecord` unless every part of the record is well formed."""
    if not 2 <= len(replica_set.members) <= MAX_MEMBERS:
        raise InvalidRecord(f"a replica set has 2 to {MAX_MEMBERS} members")
    sites = replica_set.sites
    if len(set(sites)) != len(sites):
        raise InvalidRecord("a site is a member of a replica set once")
    for name, value in (("service", replica_set.service), ("site", ",".join(sites))):
        if not value or not value.isprintable() or len(value) > MAX_FIELD * MAX_MEMBERS:
            raise InvalidRecord(f"a replica set's {name} must be printable text")
    if not replica_set.collection.startswith("/") or len(replica_set.collection) > MAX_FIELD:
        raise InvalidRecord("a replica set's collection is a path starting with '/'")
    if any(not s or len(s) > MAX_FIELD or not s.isprintable() for s in sites):
        raise InvalidRecord("a member's site is a printable name of at most 255 characters")
    for id_ in replica_set.ids:
        check_id(id_)
    if replica_set.handle not in {m.id for m in replica_set.members}:
        raise InvalidRecord("a replica set's handle is the id of one of its members")
