"""A listening socket that bounds what clients can hold: connections, idle time, slow heads.

aiohttp closes a connection whose request head is not complete, or which stays idle, after
its keep-alive timeout (started when the connection opens, and again after each answer): the
proxy sets it to ``[limits] client_idle_timeout``. :class:`GuardedSite` adds the cap on
connections: past ``max_connections`` a new connection is answered 503 and closed at once,
so a client holding many sockets cannot starve the others of file descriptors.

    site = GuardedSite(runner, sock, max_connections=1024)
    await site.start()
"""

from __future__ import annotations

import asyncio
import socket
from ssl import SSLContext

from aiohttp import web

FOR_PEERS = web.AppKey("edgescope_for_peers", bool)
"""Set on each listener's app: True on the peer listener (``peer_listen``), else False."""

_BODY = b'{"error": {"code": 503, "title": "Too Many Connections", "message": "retry soon"}}'
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1"
    b"\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_BODY), _BODY)
)


class _Refuse(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(BUSY)
        transport.close()


class GuardedSite(web.BaseSite):
    """aiohttp's socket site with a cap on concurrent connections."""

    __slots__ = ("_max_connections", "_name", "_sock", "refused")

    def __init__(
        self,
        runner: web.BaseRunner,
        sock: socket.socket,
        *,
        max_connections: int,
        ssl_context: SSLContext | None = None,
        backlog: int = 512,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._sock = sock
        self._max_connections = max_connections
        self.refused = 0
        """Connections answered 503 because ``max_connections`` were open."""
        host, port = sock.getsockname()[:2]
        self._name = f"{'https' if ssl_context else 'http'}://{host}:{port}"

    @property
    def name(self) -> str:
        return self._name

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        limit = self._max_connections

        def protocol() -> asyncio.BaseProtocol:
            if len(server.connections) >= limit:
                self.refused += 1
                return _Refuse()
            return server()

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            protocol, sock=self._sock, ssl=self._ssl_context, backlog=self._backlog
        )
