"""Hostile headers get a clean 4xx (never a traceback, a hang or a wrong route)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

SitesFactory = Any


async def raw_request(url: str, head: bytes) -> tuple[int, bytes]:
    """Send raw bytes as a request head; return (status, body)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(1 << 20), timeout=5)
    writer.close()
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize(
    "header",
    [
        b"X-Scope: {image:\rCorte}",  # bare CR: header injection attempt
        b"X-Scope: {image: Corte}\r\n Corte2}",  # obsolete line folding
        b"X-Scope: {image: \x01Corte}",  # control character
        b"X-Scope: {image: \xff\xfeCorte}",  # not UTF-8
        b"X-Scope: " + b"A" * 70_000,  # huge
        b"X-Auth-Token: tok~scope~" + b"e" * 70_000,
    ],
)
async def test_raw_hostile_headers_are_rejected_cleanly(sites: SitesFactory, header: bytes) -> None:
    paris, corte = await sites("Paris", "Corte")
    head = b"GET /image/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + header + b"\r\n\r\n"
    status, body = await raw_request(paris.url, head)
    assert status in (400, 431)
    assert b"Traceback" not in body
    assert not corte.seen and not paris.seen
    ok, _, _ = await paris.get("/image/echo")  # and the proxy still serves
    assert ok == 200


@pytest.mark.parametrize(
    ("headers", "message", "caret_col"),
    [
        ({"X-Scope": "{image: Corte &}"}, "bad scope in x-scope", 15),
        ({"X-Auth-Token": "tok~scope~e2lt!WdlOn0"}, "invalid base64url", 4),
        ({"baggage": "scope=%7Bimage%3A%20%26%7D"}, "bad scope in baggage", 8),
        ({"X-Scope": "{image: Lyon}"}, "unknown site 'Lyon'", 8),
    ],
)
async def test_bad_scopes_are_400_with_a_caret(
    sites: SitesFactory, headers: dict[str, str], message: str, caret_col: int
) -> None:
    paris, corte = await sites("Paris", "Corte")
    status, resp_headers, body = await paris.get("/image/echo", headers=headers)
    assert status == 400, body
    error = body["error"]
    assert error["code"] == 400 and error["title"] == "Bad Scope" and message in error["message"]
    _source, caret = error["details"].splitlines()
    assert caret.index("^") == caret_col, error["details"]
    assert resp_headers["x-openstack-request-id"].startswith("req-")
    assert not corte.seen and not paris.seen
    json.dumps(body)


async def test_edgescope_headers_never_reach_a_backend(sites: SitesFactory) -> None:
    paris, _ = await sites("Paris", "Corte")
    headers = {
        "X-Edgescope-Mode": "eventual",
        "X-Edgescope-Whatever": "x",
        "X-Edgescope-Replica-Set": "abc",
        "X-Scope": "{image: Corte}",
    }
    status, _, body = await paris.get("/image/v2/images", headers=headers)
    assert status == 200 and body["site"] == "Corte"
    leaked = [name for name in body["headers"] if name.lower().startswith("x-edgescope-")]
    assert leaked == []
    status, _, body = await paris.get("/image/v2/images", headers={"X-Edgescope-Mode": "x"})
    assert status == 200 and body["site"] == "Paris" and "X-Edgescope-Mode" not in body["headers"]
