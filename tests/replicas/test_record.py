"""Finding the created id in any API's answer, and the set a create makes."""

from __future__ import annotations

import pytest

from edgescope.replicas.model import MemberState
from edgescope.replicas.record import created_id, record_create


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        (b'{"user": {"id": "u1", "name": "alice"}}', {}, "u1"),
        (b'{"id": "img-1", "name": "cirros"}', {}, "img-1"),
        (b'{"server": {"id": 42}}', {}, "42"),
        (b"", {"Location": "http://h/v2/images/i9"}, "i9"),
        (b'{"a": {"id": "1"}, "b": {"id": "2"}}', {}, None),  # ambiguous: two objects
        (b'{"token": {"expires_at": "x"}}', {}, None),
        (b"not json", {}, None),
        (b'{"id": true}', {}, None),
        (b'{"id": "' + b"x" * 300 + b'"}', {}, None),
    ],
)
def test_created_id(body: bytes, headers: dict[str, str], expected: str | None) -> None:
    assert created_id(body, headers) == expected


def test_record_create_handle_is_first_site_and_pending_members_have_no_id() -> None:
    s = record_create(
        "image",
        "/v2/images?x=1",
        [("Corte", b'{"id": "c"}', {}), ("Paris", b'{"id": "p"}', {})],
        pending=["Nice"],
    )
    assert s is not None and s.handle == "c" and s.collection == "/v2/images"
    assert [(m.site, m.id, m.state) for m in s.members] == [
        ("Corte", "c", MemberState.PRESENT),
        ("Paris", "p", MemberState.PRESENT),
        ("Nice", None, MemberState.PENDING),
    ]
    assert record_create("image", "/", [("Paris", b"{}", {})], pending=[]) is None
