"""A hostile peer on loopback, written with raw sockets: it answers every request with the
status line and headers it is given, byte for byte, what aiohttp's server would refuse to
send (control characters, forged ``X-Edgescope-*`` headers).

    async with raw_peer(b"HTTP/1.1 200 OK\\r\\nX-Thing: a\\x1bb\\r\\n", b"{}") as url:
        ...  # a proxy whose peer Evil is at url
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


@contextlib.asynccontextmanager
async def raw_peer(head: bytes, body: bytes, *, once: bool = False) -> AsyncIterator[str]:
    """Serve ``head`` (status line and headers, no Content-Length) and ``body`` to every
    request on each connection (``once``: to the first, then close it) until the block ends;
    yields the peer's URL. Closing after the answer ends a body that a forged head left
    without a length."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                length = f"Content-Length: {len(body)}\r\n\r\n".encode()
                writer.write(head + length + body)
                await writer.drain()
                if once:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
