"""Checks a call passes at ingress, before anything costly: pure, cheap, with clear errors.

* :func:`check_path` -- a path that would leave its service's prefix (``..``, ``%2e%2e``) is
  refused, since the proxy labels, routes and logs the call by that prefix;
* :func:`check_scope_width` -- a scope naming more sites than ``max_scope_sites`` is refused
  before the full parse, whose cost grows with the sites named;
* :func:`mode_of` -- ``X-Scope-Mode``: strict (default), eventual or partial;
* :func:`without_internal_headers` -- a client's ``X-Edgescope-*`` headers are dropped.

    >>> check_path("/v2/images/../../admin")
    Traceback (most recent call last):
    ...
    edgescope.proxy.ingress.BadRequest: the path has a '..' or '.' segment ...
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import unquote

from multidict import CIMultiDictProxy

from edgescope.errors import EdgescopeError, ErrorCode
from edgescope.proxy.call import MODES, ClientRequest, Mode
from edgescope.proxy.carriers import MODE_HEADER
from edgescope.proxy.protocol import INTERNAL_PREFIX, strip_internal
from edgescope.proxy.route import FanoutTooWide


class BadRequest(EdgescopeError):
    """The request itself is malformed (-> 400)."""

    code = ErrorCode.BAD_REQUEST


def check_path(path: str) -> None:
    """Refuse dot segments, percent-encoded or not, in the backend-relative path."""
    base = path.partition("?")[0]
    segments = unquote(unquote(base)).replace("\\", "/").split("/")
    if any(segment in (".", "..") for segment in segments):
        raise BadRequest(
            "the path has a '..' or '.' segment (plain or percent-encoded): it would leave "
            "its service's prefix"
        )


def check_scope_width(text: str, max_sites: int) -> None:
    """A cheap upper bound of the sites a scope text names, checked before parsing it."""
    named = text.count("&") + text.count("|") + text.count(",") + 1
    if named > max_sites:
        raise FanoutTooWide(
            f"the scope names up to {named} sites; the limit is {max_sites} (max_scope_sites)",
            text[:200],
            0,
        )


def mode_of(value: str | None) -> Mode:
    """The call's mode from its ``X-Scope-Mode`` header."""
    if value is None:
        return "strict"
    mode = value.strip().lower()
    for known in MODES:
        if mode == known:
            return known
    raise BadRequest(f"{MODE_HEADER} must be one of {', '.join(MODES)}, not {value[:40]!r}")


def without_internal_headers(request: ClientRequest) -> ClientRequest:
    """A client's request with every ``X-Edgescope-*`` header dropped (they are ours): the
    same request when it has none (the headers are copied only when one must go)."""
    if not any(name.lower().startswith(INTERNAL_PREFIX) for name in request.headers):
        return request
    headers = request.headers.copy()
    strip_internal(headers)
    return replace(request, headers=CIMultiDictProxy(headers))
