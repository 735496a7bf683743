"""Issue 20, second outside attack: a signed peer pushes values that carry a digit as ids.

A stored id is replaced in every path segment and JSON string of calls through the proxy:
when any word with a digit was an id, Evil (a configured peer of Paris) pushed a set whose
Evil member is ``qcow2``, and Paris then rewrote ``"disk_format": "qcow2"`` in a local,
unscoped create, and ``GET /image/things/qcow2``, to Paris's member id. An id now has the
shape of a generated id (hex digits and dashes, at least 8 hex digits): the push is refused
(400), and Paris's own calls keep their values.
"""

from __future__ import annotations

import pytest

from edgescope.proxy.protocol import REPLICA_SETS_PATH
from replicas.test_peer_attacks import World, record
from replicas.test_peer_attacks import world as world  # the fixture: real proxy processes

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("word", ["qcow2", "IPv4", "1", "x86_64", "sha512"])
async def test_a_value_with_a_digit_never_becomes_an_id(world: World, word: str) -> None:
    paris, evil = world.paris, world.evil
    status, _doc = await evil.send(
        "POST",
        REPLICA_SETS_PATH,
        json_doc={"set": record(word, [("Evil", word), ("Paris", "9f8e7d6c5b4a")])},
    )
    assert status == 400, _doc
    status, body = await paris.call(
        "POST", "/image/things", scope=None, json={"thing": {"disk_format": word}}
    )
    assert status == 201 and body["thing"]["disk_format"] == word, body
    status, _ = await paris.call("GET", f"/image/things/{word}", scope=None)
    assert ("GET", f"/image/things/{word}") in paris.seen
