"""Proxy-made responses: the :class:`ErrorCode` table and OpenStack-shaped error bodies.

Neighbours: ``server.py`` turns every failure into :func:`error_response`; ``merge.py``
builds the per-site body of a failed ``&`` or ``|``. The body shape is the one
keystoneauth's ``from_response`` and openstacksdk already parse::

    {"error": {"code": 503, "title": "Site Unreachable", "message": "...", "details": "..."}}

    >>> ErrorCode.LOOP_DETECTED.http_status()
    508
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from edgescope.errors import EdgescopeError, ErrorCode
from edgescope.proxy.protocol import ERROR_HEADER

__all__ = ["ErrorCode", "error_body", "error_response", "json_error", "refusal_response"]

REQUEST_ID_HEADER = "x-openstack-request-id"
RETRY_AFTER_SECONDS = 5


def error_body(
    status: int, title: str, message: str, details: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The OpenStack error document."""
    error: dict[str, Any] = {"code": status, "title": title, "message": message}
    if details:
        error["details"] = details
    error.update(extra)
    return {"error": error}


def error_response(
    code: ErrorCode,
    message: str,
    *,
    request_id: str,
    details: str | None = None,
    status: int | None = None,
    **extra: Any,
) -> web.Response:
    """A JSON error response; 503 also carries ``Retry-After``."""
    http_status = status or code.http_status()
    return json_error(
        error_body(http_status, code.title, message, details, **extra), http_status, request_id
    )


def refusal_response(refused: EdgescopeError, request_id: str) -> web.Response:
    """The answer of an internal endpoint that refuses a request: a :class:`Refused`, or an
    error that carries its code (an error without one is a bug: 500)."""
    status, title, message = refused.answer() or (
        ErrorCode.INTERNAL_ERROR.http_status(),
        ErrorCode.INTERNAL_ERROR.title,
        f"edgescope proxy error: {type(refused).__name__}",
    )
    return json_error(error_body(status, title, message), status, request_id)


def json_error(body: dict[str, Any], status: int, request_id: str) -> web.Response:
    """The error response; ``X-Edgescope-Error`` (its title) tells a client it is the
    proxy's own error, whose message names the sites."""
    headers = {REQUEST_ID_HEADER: request_id}
    title = body.get("error", {}).get("title")
    if isinstance(title, str) and title.isprintable():
        headers[ERROR_HEADER] = title
    if status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return web.Response(
        status=status, text=json.dumps(body), content_type="application/json", headers=headers
    )
