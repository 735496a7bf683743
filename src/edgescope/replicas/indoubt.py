"""Find what an in-doubt create made (issue 24, campaign causes B and E).

A proxy killed while its backend applied a create leaves the write's claim ``applying``; the
next proxy takes it over, and the write may or may not have reached the backend. Before it
POSTs again, or when the create is to be undone by key (a failed strict ``&``), the proxy
asks the backend's collection for the create's ``name`` (``GET <collection>?name=<name>``,
which glance, nova, cinder and keystone all serve). The candidates are the resources of that
name that no replica set knows and that were made while the write may have been sent: not
before it was first claimed (:data:`MARGIN` for the clocks of a site's hosts), nor well after
its last claim ended (:data:`LATE`); each one's ``created_at`` or ``created``, read from the
listing or, when the listing has none, from ``GET <collection>/<id>``:

- a replay (:func:`create_lookup`): one candidate is what the dead proxy made: it is
  answered as the create's 201 and recorded, nothing is POSTed; several answer a 409 that
  names them (an operator keeps one); none: the create is applied;
- an undo (:func:`made_lookup`): one candidate *with* a creation time is deleted; one
  without one (keystone's users show none: it may be older than the write) or several are
  left and named in a 409 "check by hand"; none: nothing was made.

A listing that cannot tell (any answer but 200 with a list, 404 and 405 aside, or no answer
at all) is never taken for "absent": :class:`Undecided` (a 503), the write stays in doubt
and is retried later. A 404 or 405 means the path is no collection (an action): nothing to
find. A create with no ``name`` in its body is applied as before.

    lookup = create_lookup(find, "Corte", "/things", body, known)
    found = await lookup(since, until)   # BranchReply, or None: apply it
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from edgescope.errors import Refused, SiteUnreachable
from edgescope.jsondoc import json_or_none
from edgescope.proxy.call import BranchReply
from edgescope.proxy.responses import error_body

log = logging.getLogger("edgescope.replicas")
Lookup = Callable[[float, float], Awaitable[BranchReply | None]]
"""What the guard calls, with the times the write may have been sent between (the first
claim's, the end of the last), for a create it took over in doubt: the answer, or None."""
Find = Callable[[str], Awaitable[BranchReply]]
"""``GET`` of a path (with its query) at this site's backend."""
MAX_LISTED = 5
"""Candidates looked at one by one and named in a 409; more are named by their count."""
MARGIN = 5.0
"""Seconds a resource may seem older than its write's claim (the backend's clock, and
glance's whole seconds) and still be a candidate."""
LATE = 300.0
"""Seconds a resource may seem newer than the end of its write's last claim (a backend that
finishes a create after its proxy died, up to a backend's longest write) and still be a
candidate: one made later (a retry of that name, a colleague's) is not the write's."""
MAX_NAME = 1024
"""Longest name looked up (characters; an OpenStack name has at most 255)."""


class Undecided(Refused):
    """The backend's answer cannot tell whether the create made something: retried later."""

    def __init__(self, site: str, name: str, answer: str) -> None:
        self.got = answer
        """What the lookup got (``503``, ``no answer (...)``)."""
        super().__init__(
            503,
            f"cannot tell whether {name[:80]!r} was made at {site} by a create in doubt: "
            f"its lookup got {answer}; kept in doubt, retried later",
            title="Create In Doubt",
        )


@dataclass(frozen=True, slots=True)
class Candidate:
    """A resource a create in doubt may have made, as the backend shows it."""

    doc: dict[str, Any]
    made: float | None
    """Its creation time (unix seconds), None when the backend shows none."""

    @property
    def id(self) -> str:
        return str(self.doc["id"])


@dataclass(frozen=True, slots=True)
class Found:
    """What an undo in doubt found by the create's name."""

    id: str | None
    """The one resource to delete, if any."""
    note: str
    left: bool = False
    """Candidates were found that it cannot pick for sure: left to an operator."""


def created_name(body: bytes | None) -> tuple[str | None, str] | None:
    """(wrapper, name) of a create's body: ``{"server": {"name": ..}}`` or ``{"name": ..}``."""
    doc = json_or_none(body) if body else None
    if not isinstance(doc, dict):
        return None
    if len(doc) == 1:
        ((wrapper, inner),) = doc.items()
        if isinstance(inner, dict) and isinstance(inner.get("name"), str) and inner["name"]:
            return wrapper, inner["name"]
    name = doc.get("name")
    return (None, name) if isinstance(name, str) and name else None


def undo_name(header: str | None) -> str | None:
    """The create's name an undo by key carries (``X-Edgescope-Undo-Name``, percent-encoded),
    None when absent or not a plausible name (too long, control characters)."""
    if header is None or len(header) > 3 * MAX_NAME:
        return None
    try:
        name = unquote(header, errors="strict")
    except UnicodeDecodeError:
        return None
    if not name or len(name) > MAX_NAME or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return None
    return name


async def candidates(
    find: Find,
    site: str,
    collection: str,
    name: str,
    known: Callable[[str], bool],
    since: float,
    until: float,
) -> list[Candidate]:
    """The resources named ``name`` at the backend that no set knows (``known(id)``) and that
    were made between ``since`` (the write's first claim; :data:`MARGIN` before) and ``until``
    (the end of its last; :data:`LATE` after). Raises :class:`Undecided`."""
    listing = await _get(find, site, name, f"{collection}?name={quote(name, safe='')}")
    if listing is None:
        return []
    items = _items(json_or_none(listing.body))
    if items is None:
        raise Undecided(site, name, f"{listing.status} with no list in it")
    found = [
        i
        for i in items
        if i.get("name") == name and isinstance(i.get("id"), str) and not known(i["id"])
    ]
    if len(found) > MAX_LISTED:  # left to an operator: no need to date them
        return [Candidate(i, None) for i in found]
    dated = [await _dated(find, site, collection, name, i) for i in found]
    return [
        c
        for c in dated
        if c is not None and (c.made is None or since - MARGIN <= c.made <= until + LATE)
    ]


def create_lookup(
    find: Find, site: str, collection: str, body: bytes | None, known: Callable[[str], bool]
) -> Lookup | None:
    """The lookup of a create's resource by name, None when its body names none."""
    named = created_name(body)
    if named is None or "?" in collection or len(named[1]) > MAX_NAME:
        return None
    wrapper, name = named

    async def lookup(since: float, until: float) -> BranchReply | None:
        found = await candidates(find, site, collection, name, known, since, until)
        log.warning("create of %r in doubt at %s: %d candidate(s)", name[:80], site, len(found))
        if not found:
            return None
        if len(found) == 1:
            doc = {wrapper: found[0].doc} if wrapper is not None else found[0].doc
            headers = {"Content-Type": "application/json"}
            return BranchReply(site, 201, headers, json.dumps(doc).encode())
        message = (
            f"a create of {name!r} at {site} was in doubt (its proxy died applying it) and "
            f"{_named(found)} have that name: none was adopted, none created; keep one by hand"
        )
        body = json.dumps(error_body(409, "Create In Doubt", message)).encode()
        return BranchReply(site, 409, {"Content-Type": "application/json"}, body)

    return lookup


def made_lookup(
    find: Find, site: str, collection: str, name: str, known: Callable[[str], bool]
) -> Callable[[float, float], Awaitable[Found]]:
    """For an undo by key of a create in doubt: ``await made(since, until)``."""

    async def made(since: float, until: float) -> Found:
        found = await candidates(find, site, collection, name, known, since, until)
        log.warning("undo of %r in doubt at %s: %d candidate(s)", name[:80], site, len(found))
        if not found:
            return Found(None, f"nothing named {name[:80]!r} made since the create")
        if len(found) == 1 and found[0].made is not None:
            return Found(found[0].id, f"{found[0].id[:80]} found by its name {name[:80]!r}")
        why = "shows no creation time" if len(found) == 1 else "have that name"
        return Found(None, f"{_named(found)} {why}: left; check by hand", left=True)

    return made


async def _get(find: Find, site: str, name: str, path: str) -> BranchReply | None:
    """``find(path)``: its 200 answer, None for 404 or 405 (no such thing), else Undecided."""
    try:
        reply = await find(path)
    except SiteUnreachable as exc:
        raise Undecided(site, name, f"no answer ({exc.reason})") from None
    if reply.status in (404, 405):
        return None
    if reply.status != 200:
        raise Undecided(site, name, f"{reply.status}")
    return reply


async def _dated(
    find: Find, site: str, collection: str, name: str, item: dict[str, Any]
) -> Candidate | None:
    """``item`` with its creation time, shown alone when its listing has none (nova and
    cinder list ids and names only); None when it is gone meanwhile."""
    made = _made(item)
    if made is not None or "created_at" in item or "created" in item:
        return Candidate(item, made)
    shown = await _get(find, site, name, f"{collection}/{quote(item['id'], safe='')}")
    if shown is None:
        return None
    doc = json_or_none(shown.body)
    if isinstance(doc, dict) and len(doc) == 1 and isinstance(next(iter(doc.values())), dict):
        doc = next(iter(doc.values()))  # {"volume": {...}}
    if not isinstance(doc, dict) or doc.get("id") != item["id"]:
        return Candidate(item, None)
    return Candidate(doc, _made(doc))


def _made(item: dict[str, Any]) -> float | None:
    """``created_at`` (glance, cinder) or ``created`` (nova) as unix seconds (UTC if naive)."""
    value = item.get("created_at", item.get("created"))
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _named(found: list[Candidate]) -> str:
    ids = ", ".join(c.id[:80] for c in found[:MAX_LISTED])
    more = f" and {len(found) - MAX_LISTED} more" if len(found) > MAX_LISTED else ""
    return f"{len(found)} resources ({ids}{more})" if len(found) > 1 else f"1 resource ({ids})"


def _items(doc: Any) -> list[dict[str, Any]] | None:
    """The resources of a collection's listing (its one list of objects), None if none."""
    if not isinstance(doc, dict):
        return None
    for value in doc.values():
        if isinstance(value, list):
            return [i for i in value if isinstance(i, dict)]
    return None
