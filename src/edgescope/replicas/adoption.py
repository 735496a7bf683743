"""Adopt existing resources of the same name at several sites as one replica set.

Independent sites each have their own ``m1.tiny`` flavor and ``debian`` image: the same
names, different ids. An operator (a token with one of ``operator_roles`` at this site)
adopts them once; from then on ``{nova: Paris & Corte}`` resolves ``m1.tiny`` to one
resource, and each branch gets its own site's id, like any set ``&`` created::

    POST /edgescope/replicas/adopt      X-Auth-Token: <operator token>
    {"service": "compute", "collection": "/flavors", "name": "m1.tiny",
     "sites": ["Paris", "Corte", "Marseille"]}

The proxy lists ``<collection>?name=<name>`` at every site with the caller's token and keeps
the items whose ``name`` is exactly the name. Exactly one per site makes the set (its handle
is the first site's id): 201, or 200 when that set is already recorded. None at a site is a
404 naming it; several at one site are a 409 listing their ids (never a guess), and so is an
item whose id cannot be a replica id (``validate``: a flavor created with ``--id 1``). The rule, in
:func:`pick_members`, is pure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from edgescope.errors import Refused, SiteUnreachable
from edgescope.jsondoc import json_or_none
from edgescope.lang.unparse import quote_site
from edgescope.proxy.carriers import REQUEST_ID_HEADER, new_request_id
from edgescope.proxy.merge import collection_items
from edgescope.proxy.protocol import ADOPT_PATH
from edgescope.proxy.responses import refusal_response
from edgescope.replicas.model import Member, ReplicaSet
from edgescope.replicas.peers import RecordLink, check_operator
from edgescope.replicas.registry import RegistryError
from edgescope.replicas.validate import InvalidRecord, check_id

MAX_SITES = 64


class AdoptionError(Refused):
    """Why a name cannot be adopted (an HTTP status and a message naming the sites)."""


@dataclass(frozen=True, slots=True)
class Request:
    service: str
    collection: str
    name: str
    sites: tuple[str, ...]

    @classmethod
    def parse(cls, doc: Any) -> Request:
        if not isinstance(doc, dict):
            raise AdoptionError(400, "expected a JSON object: service, collection, name, sites")
        service, collection, name, sites = (
            doc.get(k) for k in ("service", "collection", "name", "sites")
        )
        if not (isinstance(service, str) and service and isinstance(name, str) and name):
            raise AdoptionError(400, "'service' and 'name' must be non-empty strings")
        if not (
            isinstance(collection, str) and collection.startswith("/") and "?" not in collection
        ):
            raise AdoptionError(400, "'collection' must be a path such as /flavors (no query)")
        if not (
            isinstance(sites, list)
            and 2 <= len(sites) <= MAX_SITES
            and all(isinstance(s, str) and s for s in sites)
            and len(set(sites)) == len(sites)
        ):
            raise AdoptionError(400, f"'sites' must list 2 to {MAX_SITES} distinct sites")
        return cls(service, collection.rstrip("/"), name, tuple(sites))


def pick_members(name: str, answers: Sequence[tuple[str, int, Any]]) -> list[Member]:
    """The one item named ``name`` at each site, from each site's (status, list answer)."""
    members = []
    for site, status, doc in answers:
        items = collection_items(doc) if status == 200 and isinstance(doc, dict) else None
        if items is None:
            raise AdoptionError(502, f"{site} answered the list with {status}, not a collection")
        found = [i for i in items if i.get("name") == name and isinstance(i.get("id"), str | int)]
        if not found:
            raise AdoptionError(404, f"no item named {name!r} at {site}")
        if len(found) > 1:
            ids = ", ".join(str(i["id"]) for i in found)
            raise AdoptionError(
                409, f"{len(found)} items named {name!r} at {site} ({ids}): ambiguous"
            )
        id_ = str(found[0]["id"])
        try:
            check_id(id_)
        except InvalidRecord as exc:  # a short flavor id such as "1": never a replica id
            raise AdoptionError(409, f"{name!r} at {site} cannot be adopted: {exc}") from None
        members.append(Member(site, id_))
    return members


class Adoption:
    """The ``/edgescope/replicas/adopt`` endpoint."""

    def __init__(self, link: RecordLink, operator_roles: Sequence[str]) -> None:
        self.link = link
        self.operator_roles = frozenset(operator_roles)

    def routes(self) -> list[web.RouteDef]:
        return [web.post(ADOPT_PATH, self.adopt)]

    async def adopt(self, request: web.Request) -> web.Response:
        request_id = request.headers.get(REQUEST_ID_HEADER) or new_request_id()
        try:
            status, replica_set = await self._adopt(request)
        except (Refused, RegistryError) as refusal:
            return refusal_response(refusal, request_id)
        return web.json_response({"set": replica_set.to_json()}, status=status)

    async def _adopt(self, request: web.Request) -> tuple[int, ReplicaSet]:
        services = self.link.services()
        token = request.headers.get("X-Auth-Token", "")
        await check_operator(services, request, self.operator_roles, "adopting")
        doc = json_or_none(await request.read())
        if doc is None:
            raise AdoptionError(400, "the body is not JSON")
        try:
            adopt = Request.parse(doc)
        except ValueError:
            raise AdoptionError(400, "the body is not JSON") from None
        if services.site not in adopt.sites:
            raise AdoptionError(
                400, f"adopt through the proxy of one of the sites, not {services.site}"
            )
        unknown = [s for s in adopt.sites if s != services.site and not services.is_peer(s)]
        if unknown:
            raise AdoptionError(400, f"unknown sites: {', '.join(unknown)}")
        answers = await asyncio.gather(*(self._list(adopt, site, token) for site in adopt.sites))
        members = pick_members(adopt.name, answers)
        return await self._record(adopt, members)

    async def _list(self, adopt: Request, site: str, token: str) -> tuple[str, int, Any]:
        services = self.link.services()
        scope = f"{{identity: {quote_site(services.site)}, {adopt.service}: {quote_site(site)}}}"
        path = f"{adopt.collection}?name={quote(adopt.name, safe='')}"
        headers = {"X-Auth-Token": token, "Accept": "application/json"}
        try:
            reply = await services.call_site(
                site, adopt.service, "GET", path, headers=headers, scope=scope
            )
        except SiteUnreachable as exc:
            raise AdoptionError(503, f"{site} is unreachable: {exc.reason}") from None
        doc = json_or_none(reply.body)
        return site, reply.status, doc

    async def _record(self, adopt: Request, members: list[Member]) -> tuple[int, ReplicaSet]:
        registry = self.link.registry
        known = {s.handle for m in members if (s := registry.lookup(m.id or "")) is not None}
        handle = members[0].id
        assert handle is not None
        if known - {handle}:
            raise AdoptionError(409, f"already in replica set {', '.join(sorted(known))}")
        current = registry.lookup(handle)
        if current is not None and {(m.site, m.id) for m in current.members} == {
            (m.site, m.id) for m in members
        }:
            return 200, current
        replica_set = ReplicaSet(
            handle, adopt.service, adopt.collection, tuple(members), self.link.clock.now()
        )
        await self.link.store_and_push(replica_set)
        return 201, replica_set
