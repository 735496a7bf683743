"""Build a replica set from the answers to an ``&`` create. Pure.

Neighbours: :mod:`hooks` calls :func:`record_create` after a POST fanned out by ``&``
succeeded (every site, or every reachable one in eventual mode) and stores the result in
the :mod:`registry` of every member site.

The created resource's id is found generically, with no code per API: a flat body
(``{"id": ...}``), a body with one wrapping object (``{"user": {"id": ...}}``), or else the
last path segment of the ``Location`` header.

    >>> created = [("Paris", b'{"user": {"id": "5f0a9e21"}}', {}),
    ...            ("Corte", b'{}', {"Location": "http://c/v3/users/c93e7b10"})]
    >>> s = record_create("identity", "/v3/users", created, pending=())
    >>> s.handle, [(m.site, m.id) for m in s.members]
    ('5f0a9e21', [('Paris', '5f0a9e21'), ('Corte', 'c93e7b10')])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from edgescope.jsondoc import json_or_none
from edgescope.replicas.model import Hlc, Member, MemberState, ReplicaSet

MAX_ID_LENGTH = 255


def created_id(body: bytes, headers: Mapping[str, str]) -> str | None:
    """The id of the resource a create answered with, or None when it cannot be told."""
    doc = json_or_none(body)
    if isinstance(doc, dict):
        found = _id_of(doc)
        if found is None:
            wrapped = [v for v in doc.values() if isinstance(v, dict)]
            if len(wrapped) == 1:
                found = _id_of(wrapped[0])
        if found is not None:
            return found
    location = next((v for k, v in headers.items() if k.lower() == "location"), None)
    if location:
        segment = urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1]
        if 0 < len(segment) <= MAX_ID_LENGTH:
            return segment
    return None


def record_create(
    service: str,
    collection: str,
    created: Sequence[tuple[str, bytes, Mapping[str, str]]],
    *,
    pending: Sequence[str],
    version: Hlc | None = None,
) -> ReplicaSet | None:
    """The set made by one create: ``created`` is (site, body, headers) in scope order.

    The handle is the id at the first site that created the resource; ``pending`` sites
    (eventual mode) are members with no id yet. None when an id cannot be found at some site.
    """
    members: list[Member] = []
    for site, body, headers in created:
        id_ = created_id(body, headers)
        if id_ is None:
            return None
        members.append(Member(site, id_))
    if not members:
        return None
    members.extend(Member(site, None, MemberState.PENDING) for site in pending)
    handle = members[0].id
    assert handle is not None
    return ReplicaSet(handle, service, collection.split("?", 1)[0], tuple(members), version)


def _id_of(doc: dict[str, Any]) -> str | None:
    value = doc.get("id")
    if isinstance(value, str | int) and not isinstance(value, bool):
        text = str(value)
        return text if 0 < len(text) <= MAX_ID_LENGTH else None
    return None
