"""Partial answers on request (``X-Scope-Mode: partial``): an ``&`` read answered by the
sites that could answer, naming the others. Pure.

Strict ``&`` stays the default. In partial mode, a read (GET, HEAD) whose ``&`` failed only
because some sites could not answer (unreachable, or a 5xx: the site, not the request, is at
fault) answers the merged answer of the others, with ``X-Edgescope-Partial`` naming each
missing site and why (docs/proxy.md, docs/semantics.md "Partial reads"). It stays a failure
when no site answered, or when a site that answered refused the request itself (a 4xx, e.g.
404 or 403: the answer is that failure, as in strict mode). A write is never partial: it is
judged strictly (see :func:`missing_sites`).

The header value is a comma-separated list of ``site="reason"``; the reason is an HTTP
quoted-string (``\\`` escapes ``"`` and ``\\``), so :func:`parse_partial` reads it back:

    >>> value = partial_header([("Corte", "connect timeout"), ("Lyon", 'HTTP 503 "busy"')])
    >>> value
    'Corte="connect timeout", Lyon="HTTP 503 \\\\"busy\\\\""'
    >>> parse_partial(value)
    [('Corte', 'connect timeout'), ('Lyon', 'HTTP 503 "busy"')]
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from edgescope.proxy.merge import SiteResult

PARTIAL = "partial"
REASON_LIMIT = 120
"""A reason is cut to this many characters (the header names every missing site)."""
HEADER_LIMIT = 4096
"""Past this many characters the rest is counted, ``...="12 more"`` (HTTP clients reject
header lines over about 8 KB)."""

_ITEM = re.compile(r'\s*([^=,\s]+)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def missing_sites(
    results: Sequence[SiteResult], *, ok: bool, write: bool
) -> list[tuple[str, str]] | None:
    """The sites a partial read leaves out, with why; None when the call is not partial.

    None when: the ``&`` succeeded (``ok``: nothing is missing); the call is a write (a
    write applied at some sites only is either queued, eventual mode, or a failure); no site
    answered successfully; or a site that answered failed with a 4xx (the request's fault).
    """
    if ok or write:
        return None
    answered = [r for r in results if r.status is not None and not r.failed]
    missing = [r for r in results if r.status is None or (r.failed and r.status >= 500)]
    refused = [r for r in results if r.failed and r.status is not None and r.status < 500]
    if not answered or refused or not missing:
        return None
    return [(r.site, _reason(r)) for r in missing]


def _reason(result: SiteResult) -> str:
    if result.status is None:
        return (result.error or "unreachable")[:REASON_LIMIT]
    return f"HTTP {result.status}"


def partial_header(missing: Sequence[tuple[str, str]], limit: int = HEADER_LIMIT) -> str:
    """``Corte="connect timeout", Lyon="HTTP 503"``, bounded by ``limit`` characters."""
    items: list[str] = []
    size = 0
    for index, (site, reason) in enumerate(missing):
        item = f'{site}="{_quote(reason[:REASON_LIMIT])}"'
        if size + len(item) > limit:
            items.append(f'...="{len(missing) - index} more"')
            break
        items.append(item)
        size += len(item) + 2
    return ", ".join(items)


def parse_partial(value: str) -> list[tuple[str, str]]:
    """The ``(site, reason)`` pairs of an ``X-Edgescope-Partial`` value (bad items skipped)."""
    pairs = []
    for match in _ITEM.finditer(value):
        pairs.append((match.group(1), re.sub(r"\\(.)", r"\1", match.group(2))))
    return pairs


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")
