"""One replicated resource read at several sites: one answer. Pure.

When an ``&`` read addresses one replica set (``GET /servers/<handle>``), every member
answers with its own copy. The merged answer is one of those copies: the one whose value of a
ranked field (``precedence.toml``: for ``status``, ``error`` first, ``active`` last) comes
first, in scope order on ties. The object's ``id`` becomes the handle, and it gains
``edgescope:site`` (``"Paris & Corte"``), ``edgescope:members`` (each member's id and ranked
fields) and, when a member holds a value to report, ``edgescope:diverged``
(``"status: Paris=ACTIVE, Corte=ERROR"``). A body that is not one JSON object, flat or
wrapped (``{"server": {...}}``), is left as it is.

    >>> from edgescope.replicas.model import Member, ReplicaSet
    >>> members = (Member("Paris", "5f0a9e21"), Member("Corte", "c93e7b10"))
    >>> s = ReplicaSet("5f0a9e21", "compute", "/servers", members)
    >>> merged = merge_members(s, [("Paris", {"server": {"id": "5f0a9e21", "status": "ACTIVE"}}),
    ...                            ("Corte", {"server": {"id": "c93e7b10", "status": "ERROR"}})])
    >>> merged["server"]["status"], merged["server"]["id"], merged["server"]["edgescope:diverged"]
    ('ERROR', '5f0a9e21', 'status: Paris=ACTIVE, Corte=ERROR')
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from edgescope.proxy.merge import ORIGIN_FIELD
from edgescope.replicas.collapse import SITE_JOIN
from edgescope.replicas.model import ReplicaSet

MEMBERS_FIELD = "edgescope:members"
DIVERGED_FIELD = "edgescope:diverged"
ANY = "*"


@dataclass(frozen=True, slots=True)
class Ranking:
    """How the values of one field rank (lower first) and which ones to report."""

    field: str
    order: tuple[str, ...]
    report: frozenset[str]

    def rank(self, value: object) -> int:
        text = str(value).lower()
        if text in self.order:
            return self.order.index(text)
        return self.order.index(ANY) if ANY in self.order else len(self.order)


def load_rankings(text: str | None = None) -> tuple[Ranking, ...]:
    """The rankings of ``precedence.toml`` (or of ``text``)."""
    if text is None:
        text = resources.files("edgescope.replicas").joinpath("precedence.toml").read_text()
    doc = tomllib.loads(text)
    return tuple(
        Ranking(
            name,
            tuple(str(v).lower() for v in table["order"]),
            frozenset(str(v).lower() for v in table.get("report", ())),
        )
        for name, table in doc.items()
    )


RANKINGS = load_rankings()


def merge_members(
    replica_set: ReplicaSet,
    answers: Sequence[tuple[str, Any]],
    rankings: Sequence[Ranking] = RANKINGS,
) -> Any:
    """One answer from every member's decoded answer (``(site, doc)`` in scope order)."""
    found = [_resource(doc) for _, doc in answers]
    objects = [obj for obj in found if obj is not None]
    if not answers or len(objects) < len(found):
        return answers[0][1] if answers else None
    sites = [site for site, _ in answers]
    ranked = [r for r in rankings if any(r.field in obj for obj in objects)]
    best = min(
        range(len(objects)), key=lambda i: tuple(r.rank(objects[i].get(r.field)) for r in ranked)
    )
    doc = answers[best][1]
    wrapper = None if "id" in doc else next(iter(doc))
    resource = dict(objects[best])
    members = {
        site: {"id": obj.get("id"), **{r.field: obj.get(r.field) for r in ranked}}
        for site, obj in zip(sites, objects, strict=True)
    }
    resource["id"] = replica_set.handle
    resource[ORIGIN_FIELD] = SITE_JOIN.join(sites)
    resource[MEMBERS_FIELD] = members
    diverged = _diverged(members, ranked)
    if diverged:
        resource[DIVERGED_FIELD] = diverged
    return {**doc, wrapper: resource} if wrapper else resource


def _diverged(members: Mapping[str, Mapping[str, Any]], rankings: Sequence[Ranking]) -> str:
    parts = []
    for ranking in rankings:
        values = [m.get(ranking.field) for m in members.values()]
        reported = any(str(v).lower() in ranking.report for v in values)
        if reported and len({str(v) for v in values}) > 1:
            listed = ", ".join(f"{site}={m.get(ranking.field)}" for site, m in members.items())
            parts.append(f"{ranking.field}: {listed}")
    return "; ".join(parts)


def _resource(doc: Any) -> dict[str, Any] | None:
    """The resource object of an answer: the body itself, or its one wrapped object."""
    if not isinstance(doc, dict):
        return None
    if "id" in doc:
        return doc
    if len(doc) == 1:
        inner = next(iter(doc.values()))
        if isinstance(inner, dict) and "id" in inner:
            return inner
    return None
