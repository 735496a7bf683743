"""One way to reach a site: the :class:`SiteClient` protocol and the answer it gives.

Every request the proxy sends to a site -- a branch of a call to the local backend or to a
peer proxy (:class:`~sender.Sender`), an extension's own call (``call_site``,
``send_to_peer``, ``fetch_json``), a token validation, the service token's login, a
health probe (:func:`~forward.get_json`), ``proxy status`` -- ends in one
:meth:`SiteClient.open`. The real client is :class:`~forward.Upstream` (aiohttp, a pooled
connection per site); :class:`~memory.MemoryTransport` answers from Python functions, so
the dispatcher, the sender and the extensions' hooks run in unit tests without a socket
(as httpx's ``MockTransport`` does for its client).

A :class:`SiteAnswer` is what comes back once the answer's headers arrived: its status and
headers, and a body to read in chunks (:func:`~forward.iter_body`, :func:`~forward.read_body`).
Failures are :class:`~edgescope.errors.SiteUnreachable`, raised by ``open`` or while
reading the body: the client maps its own exceptions (``forward.mapped_errors``).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping
from ssl import SSLContext
from typing import Any, Protocol

from multidict import CIMultiDictProxy
from yarl import URL


class AnswerBody(Protocol):
    """An answer's body, read once, in chunks."""

    def iter_chunked(self, n: int) -> AsyncIterator[bytes]: ...


class SiteAnswer(Protocol):
    """A site's answer, headers arrived, body unread (``aiohttp.ClientResponse`` is one)."""

    @property
    def status(self) -> int: ...

    @property
    def reason(self) -> str | None: ...

    @property
    def headers(self) -> CIMultiDictProxy[str]: ...

    @property
    def content(self) -> AnswerBody: ...

    @property
    def content_length(self) -> int | None: ...

    def close(self) -> None:
        """Drop the answer unread (its connection is not reused)."""

    def release(self) -> Any:
        """The body was read: its connection may serve another request."""


class SiteClient(Protocol):
    """Sends one request to one site's URL and returns once the answer's headers arrived."""

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
    ) -> SiteAnswer:
        """Raises :class:`~edgescope.errors.SiteUnreachable` when ``site`` cannot answer;
        ``fresh``: on a new connection, never one from a pool (a read sent again on a heal)."""
        ...

    def answered_from(self, answer: SiteAnswer) -> tuple[str, int] | None:
        """The (IP, port) the connection that carried ``answer`` went to (None: unknown, or
        no socket): where a probe measures the path to, never a lookup of the peer's name
        that its DNS could answer apart (attack findings F6, 2026-12-08 F1)."""
        ...
