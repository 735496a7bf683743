"""The flow type of a call (``call.py``) holds no aiohttp object (issue 22).

The listener's request stays at the edge (``server.py``); the engine sees a
:class:`ClientRequest`, made here in memory as a unit test makes it.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from edgescope.proxy.call import BranchReply, BranchRequest, BranchTrace, Call, ClientRequest
from edgescope.proxy.ingress import without_internal_headers
from edgescope.proxy.memory import client_request


def _named_types(hint: Any) -> set[type]:
    """Every class ``hint`` names, inside unions and generics too."""
    found: set[type] = set()
    origin = typing.get_origin(hint)
    if isinstance(hint, type) and origin is None:
        found.add(hint)
    if origin is not None and isinstance(origin, type) and origin is not types.UnionType:
        found.add(origin)
    for arg in typing.get_args(hint):
        found |= _named_types(arg)
    return found


def test_no_field_of_a_call_s_flow_types_is_an_aiohttp_type() -> None:
    for flow in (Call, ClientRequest, BranchRequest, BranchReply, BranchTrace):
        for name, hint in typing.get_type_hints(flow).items():
            modules = {t.__module__ for t in _named_types(hint)}
            assert not any(m.split(".")[0] == "aiohttp" for m in modules), (
                f"{flow.__name__}.{name} is typed {hint}"
            )


async def test_the_body_read_whole_is_read_once_and_the_same_for_every_reader() -> None:
    request = client_request("POST", "/image/v2/images", body=b'{"name": "x"}')
    assert request.has_body and request.content_length == 13
    first = await request.read()
    assert first == b'{"name": "x"}'
    assert await request.read() is first


async def test_a_request_without_a_body_reads_empty() -> None:
    request = client_request("GET", "/image/v2/images")
    assert not request.has_body
    assert await request.read() == b""


def test_a_client_s_internal_headers_are_dropped_and_nothing_else() -> None:
    request = client_request(
        "PUT",
        "/image/v2/images/1",
        {"X-Edgescope-Replica": "forged", "X-Auth-Token": "t", "Host": "paris.example"},
        body=b"{}",
    )
    clean = without_internal_headers(request)
    assert "X-Edgescope-Replica" not in clean.headers
    assert clean.headers["X-Auth-Token"] == "t"
    assert (clean.method, clean.raw_path, clean.host) == (
        "PUT",
        "/image/v2/images/1",
        "paris.example",
    )
    assert clean.body is request.body and clean.content_length == 2
    assert "X-Edgescope-Replica" in request.headers  # the listener's headers are not touched


def test_a_request_without_internal_headers_is_not_copied() -> None:
    request = client_request("GET", "/image/v2/images", {"X-Auth-Token": "t"})
    assert without_internal_headers(request) is request


def test_a_call_s_notes_are_its_own() -> None:
    one = Call(client_request("GET", "/"), "image", "/", "", "r-1")
    two = Call(client_request("GET", "/"), "image", "/", "", "r-2")
    one.notes["spans"] = 1
    assert two.notes == {}
    assert one.notes == {"spans": 1}
