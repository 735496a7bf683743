"""The upstream HTTP client: one aiohttp session, streaming both ways, errors mapped once.

Neighbours: ``server.py`` calls :meth:`Upstream.open` for every branch (local backend or
peer proxy) and streams the answer with :func:`iter_body`; ``body.py`` supplies request
bodies as async iterators. Every aiohttp/socket exception becomes
:class:`~edgescope.errors.SiteUnreachable` in :func:`mapped_errors` -- the one boundary.

    async with Upstream() as upstream:
        response = await upstream.open("Corte", "GET", URL("http://127.0.0.1:20290/x"),
                                       headers={}, body=None, connect_timeout=2, read_timeout=30)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import socket
import struct
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from ssl import SSLContext
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp.connector import Connection
from multidict import CIMultiDict
from yarl import URL

from edgescope.errors import CONNECT_TIMED_OUT, AnswerTooLarge, BadAnswer, SiteUnreachable
from edgescope.jsondoc import json_or_none
from edgescope.proxy.resolver import OwnThreadsResolver
from edgescope.proxy.siteclient import SiteAnswer, SiteClient

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
SMALL_JSON_MAX_BYTES = 64 * 1024
"""Largest health answer read from a peer (a real one is a few hundred bytes)."""
STATUS_MAX_BYTES = 16 * 1024 * 1024
"""Largest status page ``proxy status`` reads from its own proxy (a row per peer)."""
HOP_BY_HOP = frozenset(
    {
        "connection",
        "expect",  # 100-continue is negotiated per connection; aiohttp answers it for us
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)
"""Headers that describe one connection, never forwarded (RFC 9110 section 7.6.1)."""


def end_to_end(headers: Mapping[str, str]) -> CIMultiDict[str]:
    """``headers`` without hop-by-hop ones (including any the Connection header names).

    On every call's path (the request, and each answer): copied whole by multidict's C code,
    then the few hop-by-hop names present are deleted, rather than rebuilt header by header in
    Python (a fifth of the time; docs/design.md, "Hot path")."""
    out: CIMultiDict[str] = CIMultiDict(headers)
    connection = out.get("Connection")
    for name in HOP_BY_HOP:
        if name in out:
            del out[name]  # every value of the name
    if connection:
        for named in connection.split(","):
            named = named.strip()
            if named and named in out:
                del out[named]
    return out


_UNSENDABLE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
"""What HTTP forbids in a field (RFC 9110 5.5), and aiohttp refuses to write."""


def unsendable_header(response: aiohttp.ClientResponse) -> str | None:
    """The first header (or the reason phrase) of an answer that has a control character,
    described, or None: such an answer cannot be passed on to the client."""
    if _UNSENDABLE.search(response.reason or ""):
        return "a control character in its reason phrase"
    if _UNSENDABLE.search("\t".join(response.headers.values())) is None:
        return None  # the usual case, in one search (aiohttp's parser checked the names)
    for name, value in response.headers.items():
        if _UNSENDABLE.search(value):
            return f"a control character in header {name[:64]!r}"
    return None


@contextmanager
def mapped_errors(site: str) -> Iterator[None]:
    """Turn any client-side failure talking to ``site`` into SiteUnreachable."""
    try:
        yield
    except SiteUnreachable:
        raise
    except aiohttp.ConnectionTimeoutError as exc:
        raise SiteUnreachable(site, CONNECT_TIMED_OUT, connecting=True) from exc
    except (aiohttp.ServerTimeoutError, TimeoutError) as exc:
        raise SiteUnreachable(site, f"timed out ({type(exc).__name__})") from exc
    except aiohttp.ClientConnectorError as exc:
        reason = (
            "connection refused"
            if isinstance(exc.os_error, ConnectionRefusedError)
            else (f"cannot connect: {exc.os_error.strerror or exc.os_error}")
        )
        raise SiteUnreachable(site, reason, connecting=True) from exc
    except aiohttp.ServerDisconnectedError as exc:
        raise SiteUnreachable(site, "server disconnected") from exc
    except aiohttp.ClientResponseError as exc:  # aiohttp's parser refused the answer's head
        # Its text holds the URL (a backend's internal address) and the site's own bytes:
        # logged here, never told to a client (X-Edgescope-Partial, an error's message).
        log.warning("site %s sent a malformed HTTP answer: %s", site, _describe(exc))
        raise SiteUnreachable(site, "malformed HTTP answer") from exc
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        raise SiteUnreachable(site, _describe(exc)) from exc


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # some client errors format lazily from fields that may be unset
        text = ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


AddrInfo = tuple[int, int, int, str, tuple[Any, ...]]
"""One ``getaddrinfo`` entry, as aiohttp's ``socket_factory`` receives it."""


TCP_RTO_MAX_MS = 44
"""Linux's socket option (6.15 and later) capping a connection's retransmission back-off."""
RTO_MAX_MS = 1000
"""The cap: 1 s, the kernel's lowest (its default is 120 s)."""


def short_backoff(sock: socket.socket) -> None:
    """Retransmit at least once a second on ``sock`` (and on the connections a listener
    accepts: they inherit it), so that a call caught in a cut goes through within about a
    second of the heal instead of waiting out the doubled delays (after a 5 s cut, the next
    retransmission can be 5 s or more away). A kernel without the option keeps its default."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, TCP_RTO_MAX_MS, RTO_MAX_MS)


def abortive_socket(addr_info: AddrInfo) -> socket.socket:
    """A client socket whose close discards what the peer has not acknowledged (SO_LINGER 0)
    and whose retransmissions back off to at most a second (:func:`short_backoff`).

    When the proxy gives up on a call (read timeout, breaker opened) across a cut link, a
    graceful close would leave the unacknowledged request in the kernel, retransmitted
    until the link heals: the peer would then apply a write reported to the client as
    failed. An abortive close drops it (only a request the peer had received already can
    still be applied, as after any timeout).
    """
    family, type_, proto, _, _ = addr_info
    sock = socket.socket(family=family, type=type_, proto=proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    short_backoff(sock)
    return sock


RACE_COPIES = 3
"""Connects raced per fresh connection (:class:`RacingConnector`)."""
RACE_STAGGER = 0.1
"""Seconds between them: a SYN not answered by then is likely lost (a peer's RTT is well
under), and the next goes instead of waiting a second for the kernel's retransmission."""


class RacingConnector(aiohttp.TCPConnector):
    """A connector that opens each connection by racing ``copies`` connects to the same
    address, ``stagger`` seconds apart, and keeps the first made (RFC 8305's race, with
    aiohttp's own happy-eyeballs code, on one address; the others are reset).

    For the fresh connections to a suspect peer (watch probes, reads sent again on a heal):
    under 30 % loss per direction a handshake fails once in two (SYN or SYN-ACK lost), and
    the kernel resends a SYN only after a second, while three connects fail together once in
    eight. A dead address still fails within one ``connect_timeout``: the copies are raced,
    not tried in turn. Hooks aiohttp's ``_wrap_create_connection`` (the step that receives
    the address list); ``tests/proxy/test_racing_connect.py`` guards it.
    """

    def __init__(
        self, *, copies: int = RACE_COPIES, stagger: float = RACE_STAGGER, **kwargs: Any
    ) -> None:
        super().__init__(happy_eyeballs_delay=stagger, interleave=1, **kwargs)
        self.copies = copies

    async def _wrap_create_connection(
        self, *args: Any, addr_infos: list[Any], **kwargs: Any
    ) -> Any:
        raced = [info for info in addr_infos for _ in range(self.copies)]
        return await super()._wrap_create_connection(*args, addr_infos=raced, **kwargs)


@functools.lru_cache(maxsize=256)
def _timeout(connect: float, read: float) -> aiohttp.ClientTimeout:
    """The (immutable) timeouts of a request, made once per pair: every call used to build
    one, and a site's timeouts are the same for all its calls."""
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)


@functools.lru_cache(maxsize=4096)
def base_url(url: URL) -> str:
    """``url`` as text without its trailing slash, once per site's URL (every branch
    appends its path to it)."""
    return str(url).rstrip("/")


class _Answer(aiohttp.ClientResponse):
    """An answer that keeps the connection's transport it came on (what :func:`peer_address`
    asks), a reference and no more on the hot path."""

    carried_by: asyncio.BaseTransport | None = None

    async def start(self, connection: Connection) -> aiohttp.ClientResponse:
        self.carried_by = connection.transport
        return await super().start(connection)


def peer_address(response: object) -> tuple[str, int] | None:
    """The (IP, port) the connection that carried ``response`` went to (None: unknown)."""
    transport = response.carried_by if isinstance(response, _Answer) else None
    peer = transport.get_extra_info("peername") if transport is not None else None
    return (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) and len(peer) >= 2 else None


def _session(connector: aiohttp.TCPConnector) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=connector,
        response_class=_Answer,
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
    )


class Upstream:
    """A shared connection pool to local backends and peer proxies."""

    def __init__(self, pool_size: int = 0) -> None:
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None
        self._fresh: aiohttp.ClientSession | None = None
        """Connections used once (``fresh=True``): a watch probe, a read sent again on a heal;
        each raced (:class:`RacingConnector`)."""
        self._resolver: OwnThreadsResolver | None = None

    async def __aenter__(self) -> Upstream:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        self._resolver = OwnThreadsResolver()  # both connectors: one lookup per name
        connector = aiohttp.TCPConnector(
            limit=self._pool_size,
            limit_per_host=0,
            enable_cleanup_closed=False,
            socket_factory=abortive_socket,
            resolver=self._resolver,
        )
        self._session = _session(connector)
        self._fresh = _session(
            RacingConnector(
                limit=self._pool_size,
                limit_per_host=0,
                force_close=True,
                enable_cleanup_closed=False,
                socket_factory=abortive_socket,
                resolver=self._resolver,
            )
        )

    def answered_from(self, answer: SiteAnswer) -> tuple[str, int] | None:
        """The (IP, port) the connection that carried ``answer`` went to (None: unknown)."""
        return peer_address(answer)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._fresh is not None:
            await self._fresh.close()
            self._fresh = None
        if self._resolver is not None:
            await self._resolver.close()
            self._resolver = None

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
    ) -> aiohttp.ClientResponse:
        """Send the request and return once the response headers arrived (body unread);
        ``ssl`` verifies an ``https`` peer (and presents this site's certificate);
        ``fresh``: on a new connection, closed after (never one from the pool: a pooled
        connection caught in a cut may still be waiting for its retransmission)."""
        session = self._fresh if fresh else self._session
        assert session is not None, "Upstream.start() was not called"
        timeout = _timeout(connect_timeout, read_timeout)
        with mapped_errors(site):
            response = await session.request(
                method,
                url,
                headers=headers,
                data=body,
                timeout=timeout,
                allow_redirects=False,
                compress=None,
                chunked=None,
                ssl=ssl if ssl is not None else True,
            )
        if (bad := unsendable_header(response)) is not None:
            response.release()
            log.warning("site %s answered %s %s with %s: refused (502)", site, method, url, bad)
            raise BadAnswer(site, f"it answered {bad}, which cannot be passed on")
        return response


async def iter_body(response: SiteAnswer, site: str) -> AsyncIterator[bytes]:
    """The response body in chunks, with errors mapped; releases the connection at the end."""
    try:
        with mapped_errors(site):
            async for chunk in response.content.iter_chunked(CHUNK):
                yield chunk
    finally:
        response.release()


class ReadBudget:
    """Bytes that the answers of one call may take together (an ``&``'s branches)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.left = total


async def read_body(
    response: SiteAnswer, site: str, limit: int, budget: ReadBudget | None = None
) -> bytes:
    """The whole body, at most ``limit`` bytes (and what is left of ``budget``)."""
    parts: list[bytes] = []
    size = 0
    async for chunk in iter_body(response, site):
        size += len(chunk)
        if budget is not None:
            budget.left -= len(chunk)
        over = f"{limit} bytes" if size > limit else None
        if budget is not None and budget.left < 0:
            over = f"{budget.total} bytes for every site together"
        if over is not None:
            response.close()
            raise AnswerTooLarge(f"{site}'s answer goes over {over}, the most read whole")
        parts.append(chunk)
    return b"".join(parts)


async def get_json(
    client: SiteClient,
    site: str,
    url: URL,
    *,
    timeout: float,
    ssl: SSLContext | None = None,
    max_bytes: int = SMALL_JSON_MAX_BYTES,
    fresh: bool = False,
) -> object:
    """A small GET through ``client`` (health probes, ``proxy status``); raises
    SiteUnreachable.

    Bounded, since a peer may be hostile: the whole exchange ends within twice
    ``timeout`` (a peer trickling bytes cannot hold a probe round), and an answer over
    ``max_bytes`` or not JSON is the site's failure, read no further."""
    answer, _ = await get_json_from(
        client, site, url, timeout=timeout, ssl=ssl, max_bytes=max_bytes, fresh=fresh
    )
    return answer


async def get_json_from(
    client: SiteClient,
    site: str,
    url: URL,
    *,
    timeout: float,
    ssl: SSLContext | None = None,
    max_bytes: int = SMALL_JSON_MAX_BYTES,
    fresh: bool = False,
) -> tuple[object, tuple[str, int] | None]:
    """:func:`get_json`, and the (IP, port) its connection went to (None: unknown): a probe
    measures the path to that address, never to a lookup of the peer's name (a peer's DNS
    may answer one lookup apart from another)."""
    try:
        return await asyncio.wait_for(
            _get_json(client, site, url, timeout, ssl, max_bytes, fresh), timeout=2 * timeout
        )
    except TimeoutError:
        raise SiteUnreachable(site, f"no whole answer within {2 * timeout:g} s") from None


async def _get_json(
    client: SiteClient,
    site: str,
    url: URL,
    timeout: float,
    ssl: SSLContext | None,
    max_bytes: int,
    fresh: bool,
) -> tuple[object, tuple[str, int] | None]:
    response = await client.open(
        site,
        "GET",
        url,
        headers={},
        body=None,
        connect_timeout=timeout,
        read_timeout=timeout,
        ssl=ssl,
        fresh=fresh,
    )
    address = client.answered_from(response)
    if response.status >= 400:
        response.close()
        raise SiteUnreachable(site, f"health check answered {response.status}")
    if (response.content_length or 0) > max_bytes:
        response.close()
        raise SiteUnreachable(site, f"its answer is over {max_bytes} bytes")
    body = bytearray()
    async for chunk in iter_body(response, site):
        body += chunk
        if len(body) > max_bytes:
            response.close()
            raise SiteUnreachable(site, f"its answer is over {max_bytes} bytes")
    answer = json_or_none(bytes(body))
    if answer is None:
        raise SiteUnreachable(site, "its answer is not JSON")
    return answer, address
