"""Find what an in-doubt create made before applying it again (issue 24, campaign cause B).

A proxy killed while its backend applied a create leaves the write's claim ``applying``; the
next proxy takes it over, and the write may or may not have reached the backend. Before it
POSTs again, the guard asks the backend's collection for the create's ``name``
(``GET <collection>?name=<name>``, which glance, nova, cinder and keystone all serve):

- exactly one resource of that name that no replica set knows: that is the one the dead proxy
  made; it is answered as the create's 201 and recorded, nothing is POSTed;
- several: a 409 that names them, recorded as the write's answer (an operator picks one);
- none (or the path lists nothing: an action, not a collection): the create is applied.

A name that another, older resource of the site also has is seen as "several" (never a wrong
adoption, at worst a 409). A create with no name in its body is applied as before.

    lookup = create_lookup(find, "/things", body, known)
    found = await lookup()   # BranchReply, or None: apply it
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from edgescope.errors import SiteUnreachable
from edgescope.jsondoc import json_or_none
from edgescope.proxy.call import BranchReply
from edgescope.proxy.responses import error_body

Lookup = Callable[[], Awaitable[BranchReply | None]]
"""What the guard calls for a create it took over in doubt: the answer to give, or None."""
Find = Callable[[str], Awaitable[BranchReply]]
"""``GET`` of a path (with its query) at this site's backend."""
MAX_LISTED = 5
"""Ids named in the 409 for several matches."""


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


def create_lookup(
    find: Find, site: str, collection: str, body: bytes | None, known: Callable[[str], bool]
) -> Lookup | None:
    """The lookup of a create's resource by name, None when its body names none. A listing
    answered 4xx (the path is an action, not a collection) finds nothing: the write is applied.
    ``known(id)``: the id is already a member of a replica set (so not this create's)."""
    named = created_name(body)
    if named is None or "?" in collection:
        return None
    wrapper, name = named

    async def lookup() -> BranchReply | None:
        listing = await find(f"{collection}?name={quote(name, safe='')}")
        if listing.status >= 500:  # not applied now: retried later
            raise SiteUnreachable(site, f"cannot check whether {name!r} exists ({listing.status})")
        if listing.status != 200:  # not a collection (an action), or not ours to list
            return None
        items = _items(json_or_none(listing.body))
        found = [
            i
            for i in items
            if i.get("name") == name and isinstance(i.get("id"), str) and not known(i["id"])
        ]
        if not found:
            return None
        if len(found) == 1:
            doc = {wrapper: found[0]} if wrapper is not None else found[0]
            headers = {"Content-Type": "application/json"}
            return BranchReply(site, 201, headers, json.dumps(doc).encode())
        ids = ", ".join(str(i["id"]) for i in found[:MAX_LISTED])
        message = (
            f"a create of {name!r} at {site} was in doubt (its proxy died applying it) and "
            f"{len(found)} resources have that name ({ids}): none was adopted, none created; "
            "keep one by hand"
        )
        body = json.dumps(error_body(409, "Create In Doubt", message)).encode()
        return BranchReply(site, 409, {"Content-Type": "application/json"}, body)

    return lookup


def _items(doc: Any) -> list[dict[str, Any]]:
    """The resources of a collection's listing: its one list of objects."""
    if not isinstance(doc, dict):
        return []
    for value in doc.values():
        if isinstance(value, list):
            return [i for i in value if isinstance(i, dict)]
    return []
