"""Combine the branches of a multi-site call into one response. Pure: bytes in, bytes out.

Neighbours: ``server.py`` collects one :class:`SiteResult` per site (via scope-lang's
evaluator) and calls :func:`merge_results` when every branch succeeded, or
:func:`failure_response` when a branch of ``&`` failed or every site of ``|`` did.

* A JSON collection -- an object whose main key holds a list of objects, such as
  ``{"servers": [...]}`` -- is merged into one list. Each item gets the field
  ``"edgescope:site"`` naming its origin. Pagination links that cannot be followed any more
  are removed (``servers_links``, glance's ``next``, keystone's ``links.next/previous``).
* Any other success returns the first site's body (left to right in the scope).
* ``X-Edgescope-Sites: Paris=200, Corte=200`` always lists every site's status.

    >>> a = SiteResult("Paris", 200, b'{"servers": [{"id": 1}]}')
    >>> b = SiteResult("Corte", 200, b'{"servers": [{"id": 2}]}')
    >>> merge_results([a, b]).body
    b'{"servers": [{"id": 1, "edgescope:site": "Paris"}, {"id": 2, "edgescope:site": "Corte"}]}'
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgescope.errors import AnswerTooLarge
from edgescope.jsondoc import json_or_none
from edgescope.proxy.protocol import SITES_HEADER
from edgescope.proxy.responses import ErrorCode, error_body

ORIGIN_FIELD = "edgescope:site"
"""The field added to every item of a merged collection: the site it came from."""
MESSAGE_SITES = 20
"""Sites named in an error message (failures first); the ``sites`` list always has all."""


@dataclass(frozen=True, slots=True)
class SiteResult:
    """One site's answer (``status``) or failure to answer (``status`` None, ``error`` set)."""

    site: str
    status: int | None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    error: str = ""
    failed: bool = False

    @property
    def label(self) -> str:
        return str(self.status) if self.status is not None else "unreachable"


@dataclass(frozen=True, slots=True)
class Merged:
    status: int
    body: bytes
    headers: dict[str, str]


def sites_header(
    results: Sequence[SiteResult], limit: int = 2048, pending: Collection[str] = ()
) -> str:
    """``Paris=200, Corte=unreachable`` (``Corte=pending`` for a queued write); past
    ``limit`` chars, counts per outcome instead (HTTP clients reject header lines over about
    8 KB; a 1000-site fan-out would exceed it)."""

    def label_of(r: SiteResult) -> str:
        return "pending" if r.site in pending else r.label

    full = ", ".join(f"{r.site}={label_of(r)}" for r in results)
    if len(full) <= limit:
        return full
    by_label: dict[str, list[str]] = {}
    for r in results:
        by_label.setdefault(label_of(r), []).append(r.site)
    parts = []
    for label, names in by_label.items():
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        parts.append(f"{len(names)} sites={label} ({shown})")
    return "; ".join(parts)[:limit]


def merge_results(results: Sequence[SiteResult], max_items: int | None = None) -> Merged:
    """One response from several successful branches (in scope order).

    Raises :class:`AnswerTooLarge` when the bodies hold more than ``max_items`` JSON objects,
    counted (an upper bound: every ``{``) before anything is parsed.
    """
    if max_items is not None:
        objects = sum(r.body.count(b"{") for r in results)
        if objects > max_items:
            raise AnswerTooLarge(
                f"the answers hold up to {objects} objects; the proxy merges at most {max_items}"
            )
    first = results[0]
    headers = {k: v for k, v in first.headers.items() if k.lower() != "content-length"}
    headers[SITES_HEADER] = sites_header(results)
    docs = [_json_object(r.body) for r in results]
    key = _collection_key(docs[0]) if docs[0] is not None else None
    if key is None or any(d is None or _collection_key(d) != key for d in docs):
        return Merged(first.status or 200, first.body, headers)
    merged = _strip_pagination(dict(docs[0]), key)  # type: ignore[arg-type]
    merged[key] = [
        {**item, ORIGIN_FIELD: result.site} if isinstance(item, dict) else item
        for result, doc in zip(results, docs, strict=True)
        for item in doc[key]  # type: ignore[index]
    ]
    headers["Content-Type"] = "application/json"
    return Merged(first.status or 200, json.dumps(merged).encode(), headers)


def failure_response(results: Sequence[SiteResult], service: str, operator: str) -> Merged:
    """The OpenStack error body for a failed multi-site call, listing each site's outcome.

    Status: 503 (with Retry-After, added by the server) when a failed site was unreachable,
    else the first failed site's HTTP status (e.g. 404 when no site has the resource). For a
    ``|``, every site that answered saying 404 is a 404 even when others were unreachable:
    the resource is not where it can be asked now, so a client's lookup by id goes on by name.
    """
    failed = [r for r in results if r.failed]
    unreachable = [r for r in failed if r.status is None]
    answered = [r for r in failed if r.status is not None]
    if operator == "|" and answered and all(r.status == 404 for r in answered):
        status, title = 404, "Not Found"
    elif unreachable:
        status, title = 503, ErrorCode.SITE_UNREACHABLE.title
    else:
        status = failed[0].status or 502
        title = "Site Failure"
    what = (
        "every site failed"
        if operator == "|" or len(failed) == len(results)
        else f"{len(failed)} of {len(results)} sites failed"
    )
    shown = [r for r in results if r.failed][:MESSAGE_SITES] + [r for r in results if not r.failed][
        : max(0, MESSAGE_SITES - len(failed))
    ]
    shown.sort(key=results.index)
    parts = "; ".join(f"{r.site}: {_describe(r)}" for r in shown)
    if len(shown) < len(results):
        parts += f"; and {len(results) - len(shown)} more sites, see 'sites'"
    body = error_body(
        status, title, f"{service}: {what} ({parts})", sites=[_site_entry(r) for r in results]
    )
    return Merged(
        status,
        json.dumps(body).encode(),
        {SITES_HEADER: sites_header(results), "Content-Type": "application/json"},
    )


def _describe(result: SiteResult) -> str:
    if result.status is None:
        return f"unreachable ({result.error})" if result.error else "unreachable"
    verdict = "failed" if result.failed else "ok"
    detail = _error_message(result.body) if result.failed else ""
    return f"{result.status} {verdict}" + (f" ({detail})" if detail else "")


def _site_entry(result: SiteResult) -> dict[str, Any]:
    entry: dict[str, Any] = {"site": result.site, "status": result.status, "ok": not result.failed}
    if result.failed:
        entry["error"] = result.error or _error_message(result.body) or result.label
    return entry


def _error_message(body: bytes) -> str:
    doc = _json_object(body)
    if doc is None:
        return body[:200].decode("utf-8", "replace").strip()
    inner = next((v for v in doc.values() if isinstance(v, dict) and "message" in v), doc)
    return str(inner.get("message", ""))[:200]


def _json_object(body: bytes) -> dict[str, Any] | None:
    doc = json_or_none(body)  # a peer's answer: anything
    return doc if isinstance(doc, dict) else None


def collection_items(doc: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The items of a JSON collection answer (``{"flavors": [...]}``), or None."""
    key = _collection_key(doc)
    return doc[key] if key is not None else None


def _collection_key(doc: dict[str, Any]) -> str | None:
    """The one key whose value is a list of objects (ignoring link lists), else None."""
    keys = [
        k
        for k, v in doc.items()
        if isinstance(v, list)
        and not k.endswith("links")
        and all(isinstance(item, dict) for item in v)
    ]
    return keys[0] if len(keys) == 1 else None


def _strip_pagination(doc: dict[str, Any], key: str) -> dict[str, Any]:
    doc.pop(f"{key}_links", None)
    doc.pop("next", None)
    links = doc.get("links")
    if isinstance(links, dict):
        doc["links"] = {k: (None if k in ("next", "previous") else v) for k, v in links.items()}
    return doc
