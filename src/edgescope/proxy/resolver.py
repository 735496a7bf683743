"""Name lookups of the upstream pool, in threads of their own.

A peer named by a host name in its own zone answers lookups with its own name servers: a
hostile or broken one never answers, and each lookup then holds a thread until the system
resolver gives up (seconds to tens of seconds). aiohttp's default resolver runs them in the
loop's default executor (6 threads on 2 cores), where the proxy's own work runs too: an
``&`` call's merge, the replica registry, the directory's signature checks. Eight such
peers stopped every ``&`` call of the site (tests/proxy/test_attacks_20261208.py).

:class:`OwnThreadsResolver` runs lookups in :data:`DNS_THREADS` threads of their own, one
lookup in flight per name (later callers, from either of the pool's connectors, join it):
stalled names hold at most those threads, and names that answer wait only if that many
names stall at once.

    connector = aiohttp.TCPConnector(resolver=OwnThreadsResolver())
"""

from __future__ import annotations

import asyncio
import socket
from concurrent.futures import ThreadPoolExecutor

from aiohttp.abc import AbstractResolver, ResolveResult

DNS_THREADS = 8
"""Lookups in flight at once, all names together."""
_NUMERIC = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
_NAME_FLAGS = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV

Key = tuple[str, int, int]


class OwnThreadsResolver(AbstractResolver):
    """``getaddrinfo`` in threads of its own, at most one lookup per name in flight."""

    def __init__(self, threads: int = DNS_THREADS) -> None:
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="edgescope-dns")
        self._pending: dict[Key, asyncio.Future[list[ResolveResult]]] = {}

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        key = (host, port, int(family))
        pending = self._pending.get(key)
        if pending is None:
            loop = asyncio.get_running_loop()
            pending = loop.run_in_executor(self._pool, lookup, host, port, family)
            self._pending[key] = pending
            pending.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(pending)  # a caller gone leaves it to the others

    def _forget(self, key: Key, done: asyncio.Future[list[ResolveResult]]) -> None:
        self._pending.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved: every caller may have gone

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def lookup(host: str, port: int, family: socket.AddressFamily) -> list[ResolveResult]:
    """``host``'s addresses as aiohttp's threaded resolver gives them (blocking)."""
    infos = socket.getaddrinfo(
        host, port, family=family, type=socket.SOCK_STREAM, flags=socket.AI_ADDRCONFIG
    )
    found: list[ResolveResult] = []
    for info_family, _, proto, _, address in infos:
        if info_family == socket.AF_INET6:
            if len(address) < 3:  # no IPv6 in this Python
                continue
            if address[3]:  # link-local: the scope goes in the text
                text, service = socket.getnameinfo(address, _NAME_FLAGS)
                address = (text, int(service))
        found.append(
            ResolveResult(
                hostname=host,
                host=str(address[0]),
                port=int(address[1]),
                family=info_family,
                proto=proto,
                flags=_NUMERIC,
            )
        )
    if not found:
        raise OSError(None, f"no address found for {host[:100]}")
    return found
