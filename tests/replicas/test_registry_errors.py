"""The replica registry raises errors of its own (what went wrong in the data), not HTTP
refusals; each carries its code, and the proxy's answer to it is the one it always gave."""

from __future__ import annotations

import json

import pytest

from edgescope.errors import EdgescopeError, ErrorCode, Refused
from edgescope.proxy.responses import refusal_response
from edgescope.replicas.model import Hlc, Member, PendingOp, ReplicaSet
from edgescope.replicas.registry import (
    IdCollision,
    QueueBounds,
    QueueFull,
    Registry,
    RegistryError,
    RegistryUnavailable,
)
from replicas.pair import ALICE

REFUSED_DATABASE = "mysql+pymysql://edgescope:secret@127.0.0.1:9/replicas"
"""A MariaDB URL nothing listens at (port 9, discard: refused at once on loopback)."""


def body_of(error: EdgescopeError) -> tuple[int, dict[str, str], dict[str, object]]:
    response = refusal_response(error, "req-1")
    assert response.text is not None
    return response.status, dict(response.headers), json.loads(response.text)["error"]


def test_an_unreachable_database_is_a_503_naming_it_without_its_password() -> None:
    with pytest.raises(RegistryUnavailable) as raised:
        Registry(REFUSED_DATABASE)
    error = raised.value
    assert isinstance(error, RegistryError) and not isinstance(error, Refused)
    status, headers, body = body_of(error)
    assert (status, body["title"]) == (503, "Replica Database Unavailable")
    assert headers["Retry-After"] == "5" and headers["X-Edgescope-Error"] == body["title"]
    message = str(body["message"])
    assert message.startswith("this proxy cannot reach its replica database mysql+pymysql://")
    assert "secret" not in message and "Connection refused" in message
    assert error.answer() == (503, "Replica Database Unavailable", message)


def test_ids_of_another_set_are_a_409_collision(location: str) -> None:
    registry = Registry(location)
    registry.put_set(ALICE)
    members = (Member("Paris", "aa0000000009"), Member("Corte", "cc0000000001"))  # Alice's
    thief = ReplicaSet("aa0000000009", "identity", "/v3/users", members, Hlc(11, 0, "P"))
    with pytest.raises(IdCollision) as raised:
        registry.put_set(thief)
    registry.close()
    assert not isinstance(raised.value, Refused)
    status, title, message = raised.value.answer() or (0, "", "")
    assert (status, title) == (409, "Replica Id Collision")
    assert message == (
        "replica set aa0000000009: ids already belong to another set: "
        "cc0000000001 (set aa0000000001)"
    )
    assert raised.value.code is ErrorCode.REPLICA_ID_COLLISION


def test_a_write_past_the_queue_bound_is_a_507_naming_the_bound(location: str) -> None:
    registry = Registry(location, bounds=QueueBounds(max_ops=1, max_bytes=10**6, owner_share=1))

    def op(key: str) -> PendingOp:
        path = "/v3/users/aa0000000001"
        return PendingOp(
            key, "aa0000000001", "Corte", "identity", "PATCH", path, b"{}", {}, Hlc(11, 0, "P")
        )

    registry.enqueue(op("k1"))
    with pytest.raises(QueueFull) as raised:
        registry.enqueue(op("k2"))
    registry.close()
    assert not isinstance(raised.value, Refused)
    status, _, body = body_of(raised.value)
    assert (status, body["title"]) == (507, "Replica Queue Full")
    assert str(body["message"]).startswith("the eventual-write queue is full: ")
    assert "queue_max_ops" in str(body["message"])
