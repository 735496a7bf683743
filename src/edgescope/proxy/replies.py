"""Answer the client: stream a branch's answer back, or send one read whole.

A small answer (with a Content-Length up to :data:`SMALL_BODY`) is read whole and written
in one go; a larger one streams, and if its site fails mid-body the client's connection is
cut, the only honest signal left once the headers are gone. A token validation answered
by a remote identity site gets this site's catalog (:func:`~identity.localise_catalog`),
so the calling service keeps using this site's endpoints. A streamed answer goes out through
the call's :class:`ClientLink` (the listener's connection; ``server.py`` implements it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from aiohttp import web
from multidict import CIMultiDict

from edgescope.errors import BadAnswer, SiteUnreachable
from edgescope.proxy.call import BranchReply, Call
from edgescope.proxy.carriers import REQUEST_ID_HEADER
from edgescope.proxy.forward import end_to_end, iter_body, read_body
from edgescope.proxy.identity import ServiceToken, localise_catalog
from edgescope.proxy.protocol import strip_internal_answer
from edgescope.proxy.responses import ErrorCode, error_response
from edgescope.proxy.siteclient import SiteAnswer

SMALL_BODY = 64 * 1024
"""Answers up to this size (with a Content-Length) are read whole and sent in one write."""
ERROR_BODY_LIMIT = 64 * 1024


class ClientLink(Protocol):
    """The connection of a call's client, as a streamed answer needs it."""

    async def prepare(self, answer: web.StreamResponse) -> None:
        """Send ``answer``'s status and headers; its body follows through ``answer``."""
        ...

    def cut(self) -> None:
        """Close the connection: the answer broke off after its headers were sent."""
        ...


def answer_headers(headers: Mapping[str, str], *, from_peer: bool) -> CIMultiDict[str]:
    """A site's answer headers as the client may get them: end to end, and none of the
    internal ones (only this proxy says which sites answered, what is partial or pending)."""
    out = end_to_end(headers)
    strip_internal_answer(out, from_peer=from_peer)
    return out


def is_small(call: Call, response: SiteAnswer) -> bool:
    """An answer small enough to read whole before answering."""
    size = response.content_length
    return size is not None and size <= SMALL_BODY and call.request.method != "HEAD"


def unreachable(call: Call, exc: SiteUnreachable) -> web.Response:
    return error_response(
        ErrorCode.BAD_ANSWER if isinstance(exc, BadAnswer) else ErrorCode.SITE_UNREACHABLE,
        f"{call.service}: {exc}",
        request_id=call.request_id,
        site=exc.site,
    )


def whole(call: Call, reply: BranchReply, extra: Mapping[str, str]) -> web.Response:
    """A branch's answer that was read whole."""
    headers: CIMultiDict[str] = CIMultiDict(
        (k, v) for k, v in reply.headers.items() if k.lower() != "content-length"
    )
    headers.update(extra)
    headers.setdefault(REQUEST_ID_HEADER, call.request_id)
    return web.Response(status=reply.status, body=reply.body, headers=headers)


async def stream_back(
    call: Call,
    client: ClientLink,
    response: SiteAnswer,
    site: str,
    extra: Mapping[str, str],
    *,
    tokens: ServiceToken | None,
    body: bytes | None = None,
    from_peer: bool = True,
) -> web.StreamResponse:
    """``response`` to ``client``, with ``extra`` headers; ``body`` if already read. With
    ``tokens`` (``Delegation.localises_catalog`` said so), a remote token validation's
    answer gets this site's catalog."""
    if tokens is not None:
        return await _with_local_catalog(call, response, site, extra, tokens, from_peer)
    headers = answer_headers(response.headers, from_peer=from_peer)
    headers.update(extra)
    if REQUEST_ID_HEADER not in headers:
        headers[REQUEST_ID_HEADER] = call.request_id
    if body is None and is_small(call, response):
        try:
            body = await read_body(response, site, SMALL_BODY)
        except SiteUnreachable as exc:
            return unreachable(call, exc)
    if body is not None:
        headers.popall("Content-Length", None)
        return web.Response(
            status=response.status, reason=response.reason, body=body, headers=headers
        )
    out = web.StreamResponse(status=response.status, reason=response.reason, headers=headers)
    await client.prepare(out)
    try:
        async for chunk in iter_body(response, site):
            await out.write(chunk)
    except SiteUnreachable:
        client.cut()
        return out
    await out.write_eof()
    return out


async def _with_local_catalog(
    call: Call,
    response: SiteAnswer,
    site: str,
    extra: Mapping[str, str],
    tokens: ServiceToken,
    from_peer: bool,
) -> web.StreamResponse:
    headers = answer_headers(response.headers, from_peer=from_peer)
    headers.update(extra)
    headers.setdefault(REQUEST_ID_HEADER, call.request_id)
    headers.popall("Content-Length", None)
    try:
        body = await localise_catalog(response, site, tokens)
    except SiteUnreachable as exc:
        return unreachable(call, exc)
    return web.Response(status=response.status, reason=response.reason, body=body, headers=headers)
