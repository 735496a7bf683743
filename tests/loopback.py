"""tests/proxy/conftest.py's real proxies on loopback, for the tests of other folders.

from loopback import proxy_fixtures
sites = proxy_fixtures().sites        # in a conftest.py: the same ``sites`` fixture
kind, data = await next_event(response, lambda kind, data: kind == "call")
front = reserve_port()                # a loopback port nothing else takes while it is held
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import json
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp


def proxy_fixtures() -> Any:
    """tests/proxy/conftest.py (real proxies, a generic backend), loaded by its path."""
    return fixtures_of("proxy")


def replica_fixtures() -> Any:
    """tests/replicas/conftest.py (proxies with replicas, links to cut and heal)."""
    return fixtures_of("replicas")


@functools.cache
def fixtures_of(name: str) -> Any:
    """The conftest.py of the tests' folder ``name``, as a module of its own."""
    folder = Path(__file__).resolve().parent / name
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))  # its own imports (wiretap) live beside it
    spec = importlib.util.spec_from_file_location(f"{name}_fixtures", folder / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


async def next_event(
    response: aiohttp.ClientResponse,
    wanted: Callable[[str, dict[str, Any]], bool],
    timeout: float = 10.0,
) -> tuple[str, dict[str, Any]]:
    """Read server-sent events until one satisfies ``wanted``; fail after ``timeout`` s."""

    async def read() -> tuple[str, dict[str, Any]]:
        kind = ""
        while True:
            line = (await response.content.readline()).decode()
            if not line:
                raise AssertionError("the event stream ended")
            line = line.rstrip("\n")
            if line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: "):
                data = json.loads(line[len("data: ") :])
                if wanted(kind, data):
                    return kind, data

    return await asyncio.wait_for(read(), timeout)


def reserve_port() -> socket.socket:
    """A loopback port held for a test: bound with SO_REUSEADDR, never listening.

    Binding port 0, closing, and handing the number to a server that starts later races with
    every outgoing connection of the machine (a shared testbed makes many), whose ephemeral
    source port may be that one: "Address already in use". A port bound here is never
    handed out as a source port, while a server that binds it with SO_REUSEADDR (edgescope,
    aiohttp, HAProxy) still can, and again after a restart. Close it at the end of the test.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock
