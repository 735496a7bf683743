"""One call through the proxy, and what one branch of it sends and gets back.

:class:`Call` is built by ``server.py`` for every request and filled in as the call is
routed (for the access log); its :class:`ClientRequest` is what the client sent, with no
aiohttp object in it (the listener hands its body on as a :class:`BodySource`).
:class:`BranchRequest` and :class:`BranchReply` are what the dispatcher and the extensions
(:mod:`extension`) exchange about one site of a plan.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from multidict import CIMultiDict, CIMultiDictProxy

from edgescope.proxy.body import ClientBody, SpoolHold
from edgescope.proxy.carriers import MODE_HEADER
from edgescope.proxy.forward import CHUNK, end_to_end
from edgescope.proxy.identity import is_identity, is_validation_call
from edgescope.proxy.protocol import strip_internal

Mode = Literal["strict", "eventual", "partial"]
MODES: tuple[Mode, ...] = ("strict", "eventual", "partial")


class BodySource(Protocol):
    """A client's request body as the listener receives it (aiohttp's ``StreamReader`` is
    one; a test may give its own)."""

    def iter_chunked(self, n: int) -> AsyncIterator[bytes]:
        """The body in chunks of at most ``n`` bytes, as they arrive."""
        ...

    async def read(self) -> bytes:
        """The rest of the body, whole."""
        ...


@dataclass(slots=True)
class ClientRequest:
    """What the client sent: the request line, its headers, and its body as it arrives.

    ``server.py`` makes it from the listener's request without copying the headers (they
    are the listener's, read only); nothing here is an aiohttp object."""

    method: str
    raw_path: str
    """As received: the path with its query, not unquoted."""
    headers: CIMultiDictProxy[str]
    body: BodySource
    has_body: bool = False
    content_length: int | None = None
    host: str = ""
    """The Host header, else the address the call came in on."""
    scheme: str = "http"
    remote: str | None = None
    """The client's address (None when unknown)."""
    _read: bytes | None = field(default=None, init=False, repr=False)

    def iter_chunked(self, n: int) -> AsyncIterator[bytes]:
        """The body as a stream (read once: whoever streams it, streams it for the call)."""
        return self.body.iter_chunked(n)

    async def read(self, idle_timeout: float | None = None) -> bytes:
        """The body read whole, once per call (the same bytes to every later reader). Each
        wait for more of it is bounded by ``idle_timeout``: a client that stalls its upload
        gets :class:`ClientBodyFailed` (408), as a streamed body does."""
        if self._read is None:
            chunks = ClientBody(self.body.iter_chunked(CHUNK), idle_timeout)
            self._read = b"".join([c async for c in chunks]) if self.has_body else b""
        return self._read

    @property
    def whole(self) -> bytes | None:
        """The body if it was read whole (None: streamed, or not read); never reads."""
        return self._read


@dataclass(slots=True)
class Call:
    """One incoming call, and what the proxy learnt about it."""

    request: ClientRequest
    service: str
    path: str
    """Backend-relative raw path with query, e.g. ``/v2/images?limit=5``."""
    prefix: str
    request_id: str
    carrier: str = "none"
    scope_text: str | None = None
    mode: Mode = "strict"
    """``eventual``: an ``&`` write applies where reachable and queues the rest; ``partial``:
    an ``&`` read answers from the sites that could answer (:mod:`partial`)."""
    from_peer: str | None = None
    hops: int = 0
    chosen: list[str] = field(default_factory=list)
    resolved: str | None = None
    """What the scope's ``around``/``nearest`` made of the routed service's expression at
    the entry proxy (``Paris & Marseille``); None when the scope had none."""
    acting_token: str | None = None
    """Set by delegation: this site's service token replaces the peer user's token."""
    client_body: ClientBody | None = None
    """The client's body as the branches stream it (None: none, or read whole)."""
    branches: list[BranchTrace] = field(default_factory=list)
    """Every branch sent, in the order sent (what observers report as the call's route)."""
    gives_up_on_open: bool = True
    """A branch waiting on a peer gives up as soon as that peer's breaker opens (a ``|`` then
    moves on). False for a one-site call: it has nowhere else to go, so it waits out a short
    cut on its pooled connection, bounded by its own connect and read timeouts."""
    _forwardable: CIMultiDict[str] | None = None
    _notes: dict[object, Any] | None = field(default=None, init=False, repr=False)

    @property
    def notes(self) -> dict[object, Any]:
        """Extensions' state for this call, under keys of their own (made when first used)."""
        if self._notes is None:
            self._notes = {}
        return self._notes

    def forwardable_headers(self) -> CIMultiDict[str]:
        """The request's headers a branch may forward, computed once per call (a fan-out to
        a thousand sites copies it a thousand times): end to end, no internal ones, no mode."""
        if self._forwardable is None:
            headers = end_to_end(self.request.headers)
            strip_internal(headers)
            headers.popall(MODE_HEADER, None)  # the mode is the entry proxy's business
            self._forwardable = headers
        return self._forwardable

    def body_stream(
        self,
        idle_timeout: float | None = None,
        max_bytes: int | None = None,
        hold: SpoolHold | None = None,
    ) -> ClientBody | None:
        """The client's request body as a stream, made once per call (``hold``: its bytes
        count against the proxy's spool budget)."""
        if self.client_body is None and self.request.has_body:
            chunks = self.request.iter_chunked(CHUNK)
            self.client_body = ClientBody(chunks, idle_timeout, max_bytes, hold)
        return self.client_body

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def is_write(self) -> bool:
        return self.request.method in WRITES

    @property
    def is_validation(self) -> bool:
        request = self.request
        return is_identity(self.service) and is_validation_call(
            request.method, self.path, "X-Subject-Token" in request.headers
        )


WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(slots=True)
class BranchRequest:
    """What the branch to ``site`` sends (extensions may rewrite it per site)."""

    site: str
    path: str
    """Backend-relative raw path with query."""
    body: bytes | None
    """The whole body when the proxy read it (small JSON), else None (streamed or none)."""
    headers: dict[str, str] = field(default_factory=dict)
    """Headers added for this branch only; ``X-Edgescope-*`` ones (e.g. replica markers)
    reach a peer proxy, never a backend."""


@dataclass(slots=True)
class BranchTrace:
    """One branch as sent: where, what the breaker said, and how it went (to its headers)."""

    site: str
    started: float
    """``time.monotonic()`` when sent."""
    breaker: str
    """The peer's breaker state when sent (``local``: this site's backend)."""
    status: int | None = None
    error: str = ""
    seconds: float | None = None
    """Until the answer's headers, or the failure."""

    def done(self, status: int | None, error: str = "") -> None:
        self.status, self.error = status, error
        self.seconds = time.monotonic() - self.started


@dataclass(slots=True)
class BranchReply:
    """One site's whole answer."""

    site: str
    status: int
    headers: dict[str, str]
    body: bytes
