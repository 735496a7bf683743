"""Review finding B4: an eventual ``&`` write whose body is not a small JSON (here text/plain)
is queued for the cut site with the exact bytes sent, and replays them; a body the proxy
cannot keep (chunked) is refused up front, never queued empty."""

from __future__ import annotations

import json
from typing import Any

from edgescope.proxy.carriers import MODE_HEADER
from replicas.pair import BOTH, eventually


async def test_a_streamed_eventual_write_is_queued_and_replayed_with_its_bytes(
    replica_sites: Any,
) -> None:
    paris, corte = await replica_sites("Paris", "Corte")
    status, _, body = await paris.call("POST", "/things", BOTH, json={"thing": {"name": "al"}})
    assert status == 201
    handle = body["thing"]["id"]
    await paris.links["Corte"].cut()
    big = json.dumps({"thing": {"email": "a@x", "pad": "x" * 1000}}).encode()
    assert len(big) > 1024
    status, _, body = await paris.call(
        "PUT",
        f"/things/{handle}",
        BOTH,
        data=big,
        headers={MODE_HEADER: "eventual", "Content-Type": "text/plain"},
    )
    assert status == 200, body
    [op] = paris.replicas.registry.pending("Corte")
    queued = paris.replicas.registry.load(op.key)
    assert queued is not None and queued.method == "PUT" and queued.body == big
    await paris.links["Corte"].heal()
    await eventually(lambda: not paris.replicas.registry.pending())
    [item] = corte.items.values()
    assert item["pad"] == "x" * 1000


async def test_an_eventual_write_with_a_chunked_body_is_refused_not_queued_empty(
    replica_sites: Any,
) -> None:
    paris, _ = await replica_sites("Paris", "Corte")
    status, _, body = await paris.call("POST", "/things", BOTH, json={"thing": {"name": "al"}})
    handle = body["thing"]["id"]
    await paris.links["Corte"].cut()

    async def chunks() -> Any:
        yield b'{"thing": {"pad": "'
        yield b"y" * 2000 + b'"}}'

    status, _, body = await paris.call(
        "PUT",
        f"/things/{handle}",
        BOTH,
        data=chunks(),
        headers={MODE_HEADER: "eventual", "Content-Type": "text/plain"},
    )
    assert status == 413, body
    assert "Content-Length" in str(body)
    assert paris.replicas.registry.pending("Corte") == []
