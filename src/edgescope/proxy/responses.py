"""Proxy-made responses: the :class:`ErrorCode` table and OpenStack-shaped error bodies.

Neighbours: ``server.py`` turns every failure into :func:`error_response`; ``merge.py``
builds the per-site body of a failed ``&`` or ``|``. The body shape is the one
keystoneauth's ``from_response`` and openstacksdk already parse::

    {"error": {"code": 503, "title": "Site Unreachable", "message": "...", "details": "..."}}

    >>> ErrorCode.LOOP_DETECTED.http_status()
    508
"""

from __future__ import annotations

import enum
import json
from typing import Any

from aiohttp import web

from edgescope.proxy.protocol import ERROR_HEADER

REQUEST_ID_HEADER = "x-openstack-request-id"
RETRY_AFTER_SECONDS = 5


class ErrorCode(enum.Enum):
    """Every failure the proxy itself answers, with its HTTP status and title."""

    BAD_SCOPE = (400, "Bad Scope")
    BAD_REQUEST = (400, "Bad Request")
    FANOUT_TOO_WIDE = (400, "Fan-out Too Wide")
    HOP_FORBIDDEN = (403, "Forbidden Hop Marker")
    PROTOCOL_MISMATCH = (400, "Protocol Version Mismatch")
    UNKNOWN_SERVICE = (404, "Unknown Service")
    CLIENT_BODY = (408, "Request Body Incomplete")
    BODY_TOO_LARGE = (413, "Request Body Too Large")
    SCOPE_TOO_LARGE = (431, "Scope Header Too Large")
    UPSTREAM_ERROR = (502, "Bad Gateway")
    SITE_UNREACHABLE = (503, "Site Unreachable")
    BUSY = (503, "Too Many Uploads")
    TOO_LARGE = (507, "Answer Too Large")
    LOOP_DETECTED = (508, "Loop Detected")

    def http_status(self) -> int:
        return int(self.value[0])

    @property
    def title(self) -> str:
        return str(self.value[1])


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
