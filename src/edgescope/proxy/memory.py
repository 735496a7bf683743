"""An in-memory :class:`~siteclient.SiteClient`: sites answered by Python functions.

The test transport of the engine (not an imitation of any OpenStack API): a unit test
gives each site a handler, builds the proxy's real :class:`~sender.Sender` and
:class:`~dispatch.Dispatcher` on it, and checks what the engine sent and decided, with no
socket and no sleep. A handler may answer, raise :class:`~edgescope.errors.SiteUnreachable`,
wait on an event the test sets (a site that is slow, under the test's control), or answer
with a body that breaks off.

    transport = MemoryTransport({"Paris": answer(200, b"[1]"), "Corte": unreachable()})
    sender = Sender(config, Upstream(), metrics, None, delegation, client=transport)
    ...
    assert [r.site for r in transport.requests] == ["Paris", "Corte"]

The client's side is made in memory too: :func:`client_request` is a
:class:`~call.ClientRequest` as ``server.py`` would make it from a listener's request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from ssl import SSLContext
from typing import TYPE_CHECKING

from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from edgescope.errors import SiteUnreachable
from edgescope.proxy.call import ClientRequest

if TYPE_CHECKING:
    from edgescope.proxy.siteclient import SiteClient


@dataclass(slots=True)
class MemoryRequest:
    """One request as the transport received it (its body read whole)."""

    site: str
    method: str
    url: URL
    headers: CIMultiDict[str]
    body: bytes
    connect_timeout: float
    read_timeout: float
    fresh: bool = False


class MemoryBody:
    """A body in memory (an answer's, or a client's): its chunks, then the end or ``error``
    (a body that breaks off)."""

    def __init__(self, chunks: list[bytes], error: SiteUnreachable | None = None) -> None:
        self._chunks = chunks
        self._error = error

    async def _chunks_then_end(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk
        if self._error is not None:
            raise self._error

    def iter_chunked(self, n: int) -> AsyncIterator[bytes]:
        return self._chunks_then_end()

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self._chunks_then_end()])


def client_request(
    method: str,
    raw_path: str,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> ClientRequest:
    """A client's request as ``server.py`` makes it (a body gets its Content-Length)."""
    out: CIMultiDict[str] = CIMultiDict(headers or {})
    if body is not None:
        out["Content-Length"] = str(len(body))
    return ClientRequest(
        method,
        raw_path,
        CIMultiDictProxy(out),
        MemoryBody([body] if body else []),
        has_body=body is not None,
        content_length=len(body) if body is not None else None,
        host=out.get("Host", "proxy.test"),
        remote="127.0.0.1",
    )


@dataclass(slots=True)
class MemoryAnswer:
    """A :class:`~siteclient.SiteAnswer` made in memory."""

    status: int
    headers: CIMultiDictProxy[str]
    content: MemoryBody
    content_length: int | None
    reason: str | None = None
    closed: bool = False
    released: bool = False
    address: tuple[str, int] | None = None
    """Where the transport says the answer came from (:meth:`MemoryTransport.answered_from`)."""

    def close(self) -> None:
        self.closed = True

    def release(self) -> None:
        self.released = True


def make_answer(
    status: int,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    *,
    breaks_off: str | None = None,
    site: str = "?",
) -> MemoryAnswer:
    """An answer of ``body``; ``breaks_off``: the body ends with that failure of ``site``."""
    out: CIMultiDict[str] = CIMultiDict(headers or {})
    if breaks_off is None:
        out.setdefault("Content-Length", str(len(body)))
    error = SiteUnreachable(site, breaks_off) if breaks_off is not None else None
    length = int(out["Content-Length"]) if "Content-Length" in out else None
    return MemoryAnswer(status, CIMultiDictProxy(out), MemoryBody([body], error), length)


Handler = Callable[[MemoryRequest], Awaitable[MemoryAnswer]]
"""How one site answers a request (raises SiteUnreachable to be unreachable)."""


def answer(
    status: int,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    *,
    breaks_off: str | None = None,
) -> Handler:
    """A site that always answers ``status`` with ``body`` (``breaks_off``: cut mid-body)."""

    async def handle(request: MemoryRequest) -> MemoryAnswer:
        return make_answer(status, body, headers, breaks_off=breaks_off, site=request.site)

    return handle


def unreachable(reason: str = "connection refused", *, connecting: bool = True) -> Handler:
    """A site that cannot be reached."""

    async def handle(request: MemoryRequest) -> MemoryAnswer:
        raise SiteUnreachable(request.site, reason, connecting=connecting)

    return handle


def held(until: asyncio.Event, then: Handler) -> Handler:
    """A site that answers (as ``then``) only once the test sets ``until``."""

    async def handle(request: MemoryRequest) -> MemoryAnswer:
        await until.wait()
        return await then(request)

    return handle


@dataclass
class MemoryTransport:
    """Sites by name, each answered by its handler; every request kept, in order."""

    sites: dict[str, Handler]
    requests: list[MemoryRequest] = field(default_factory=list)
    addresses: dict[str, tuple[str, int]] = field(default_factory=dict)
    """The (IP, port) answers from a URL's host are said to come from
    (:meth:`answered_from`); none by default."""

    async def open(
        self,
        site: str,
        method: str,
        url: URL,
        *,
        headers: Mapping[str, str],
        body: AsyncIterable[bytes] | bytes | None,
        connect_timeout: float,
        read_timeout: float,
        ssl: SSLContext | None = None,
        fresh: bool = False,
    ) -> MemoryAnswer:
        handler = self.sites.get(site)
        if handler is None:
            raise SiteUnreachable(site, "no such site in memory", connecting=True)
        data = b""
        if isinstance(body, bytes):
            data = body
        elif body is not None:
            data = b"".join([chunk async for chunk in body])
        request = MemoryRequest(
            site, method, url, CIMultiDict(headers), data, connect_timeout, read_timeout, fresh
        )
        self.requests.append(request)
        answer = await handler(request)
        answer.address = self.addresses.get(url.host or "")
        return answer

    def answered_from(self, answer: object) -> tuple[str, int] | None:
        return answer.address if isinstance(answer, MemoryAnswer) else None

    def sent_to(self) -> list[str]:
        """The sites asked, in order."""
        return [request.site for request in self.requests]


if TYPE_CHECKING:
    _CONFORMS: SiteClient = MemoryTransport({})  # mypy: the same protocol as Upstream
