"""What the outsider's attack on issue 20 found, through a real ``edgescope proxy run``.

JSON nested deeper than Python's parser recurses, from whoever may send a body: a clean 4xx
or the documented fallback, never a 500 with a traceback in the log. ``json.loads`` raises
RecursionError (not a ValueError) past ~1,000 levels, and 60 KB of ``[`` is 30,000 levels:
an anonymous revocation, a peer's sync or record push and a peer's answer under ``&`` each
carried one. A scope in a second ``baggage`` line: read, not silently ignored. A client's
``Forwarded`` (which oslo's http_proxy_to_wsgi prefers to ``X-Forwarded-*``): dropped.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from multidict import CIMultiDict
from test_trust_real import Corte, corte, entry, key_of  # noqa: F401  (the fixture)

from edgescope.proxy.protocol import sign_hop
from loopback import reserve_port

SETS = "/edgescope/replicas/sets"
DEEP = b"[" * 30_000 + b"]" * 30_000


@pytest.fixture
async def deep_peer() -> AsyncIterator[str]:
    """A site's proxy (as Corte will learn it) whose every answer is ``DEEP``."""

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b'{"images": ' + DEEP + b"}", content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = reserve_port()
    await web.SockSite(runner, sock).start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    await runner.cleanup()
    sock.close()


async def test_deeply_nested_json_is_refused_cleanly(corte: Corte, deep_peer: str) -> None:  # noqa: F811
    async with corte.session.post(
        corte.url + "/edgescope/directory/revoke",
        data=b'{"revocations": ' + DEEP + b"}",
        headers={"Content-Type": "application/json"},
    ) as answer:  # anyone may post revocations
        assert answer.status == 400, await answer.text()
    status, answer = await corte.offer(None, sender="Marseille", data=b'{"x": ' + DEEP + b"}")
    assert status == 400 and answer["error"] == "not JSON"
    push = b'{"set": ' + DEEP + b"}"  # a configured peer's record push, correctly signed
    signed = sign_hop(key_of("Marseille"), "POST", SETS, "Marseille", "Corte", 1,
                      now=time.time(), body=push)  # fmt: skip
    async with corte.session.post(corte.peer_url + SETS, data=push, headers=signed) as answer:
        assert answer.status == 400 and "malformed replica record" in await answer.text()
    # a learned site whose answers are nested past the parser: its & answer is not merged
    joined = {
        "from": "Evil",
        "fingerprint": "x",
        "self": entry(key_of("Evil"), "Evil", 1, deep_peer),
    }
    status, answer = await corte.offer(joined, sender="Evil")
    assert status == 200, answer
    async with corte.session.get(
        corte.url + "/image/v2/images", headers={"X-Scope": "{image: Corte & Evil}"}
    ) as merged:
        assert merged.status == 200  # not mergeable: the first site's answer, as for any non-JSON
        assert (await merged.json())["site"] == "Corte"
    log = corte.log.read_text()
    assert "Traceback" not in log  # refusals are logged in one line each, never with a traceback
    assert "RecursionError" not in log.replace("malformed replica record", "").replace(
        "refused: RecursionError", ""
    )


async def test_a_scope_in_a_second_baggage_line_is_read(corte: Corte) -> None:  # noqa: F811
    """Two ``baggage`` lines are one list (RFC 9110): the scope in the second one routes the
    call (to Marseille, down here: a 503 naming it), never silently served at Corte."""
    lines = CIMultiDict(
        [("baggage", "userid=alice"), ("baggage", "scope=%7Bimage%3A%20Marseille%7D")]
    )
    async with corte.session.get(corte.url + "/image/x", headers=lines) as answer:
        assert answer.status == 503, await answer.text()
        assert "Marseille" in (await answer.json())["error"]["message"]
    assert not [r for r in corte.seen if r.get("path") == "/image/x"]


async def test_a_clients_forwarded_header_never_reaches_a_service(corte: Corte) -> None:  # noqa: F811
    """The services build links from ``Forwarded`` before ``X-Forwarded-Host``: a client's
    would point them at its own host, whatever the proxy says (docs/proxy.md)."""
    lying = {"Forwarded": "host=evil.example;proto=https", "X-Forwarded-Host": "evil.example"}
    for scope in ({}, {"X-Scope": "{image: Corte}"}):
        async with corte.session.get(corte.url + "/image/x", headers={**lying, **scope}) as answer:
            seen = (await answer.json())["headers"]
        assert "Forwarded" not in seen and seen["X-Forwarded-Host"] == corte.url[len("http://") :]
