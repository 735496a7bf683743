"""A scope handle at the end of a header an application forwards (config ``[[carriers]]``).

Pure functions first, then real loopback proxies and generic backends: the backend of a
declared service gets the handle in the ``write`` header; a later call that carries it at the
end of the ``read`` header (as Swift's backends get ``X-Trans-Id``) is routed by the scope
remembered for it, here and at the peer it goes to.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from edgescope.errors import ConfigError
from edgescope.proxy.carriers import (
    HandleCarrier,
    ScopeMemory,
    handle_of,
    new_correlation_id,
    new_request_id,
    read_scope_text,
    request_id_of_handle,
    split_piggyback,
)
from edgescope.proxy.config import parse_config

SWIFT = HandleCarrier("X-Trans-Id", "X-Trans-Id-Extra", frozenset({"object-store"}))
KEY = "ed25519:" + "A" * 43 + "="


def test_a_handle_is_32_hex_digits_and_stands_for_its_id() -> None:
    rid = new_correlation_id()
    handle = handle_of(rid)
    assert len(handle) == 32 and int(handle, 16) >= 0
    # Swift: tx<21 hex>-<10 hex time>, then '-' and (quoted) X-Trans-Id-Extra
    assert request_id_of_handle(f"tx0123456789abcdef01234-0063a1b2c3-{handle}") == rid
    assert request_id_of_handle(handle) == rid


@pytest.mark.parametrize(
    "value",
    [
        "tx0123456789abcdef01234-0063a1b2c3",  # Swift's own id, no handle
        "tx0123456789abcdef01234-0063a1b2c3-" + handle_of(new_request_id()),  # version 4
        "x" + handle_of(new_correlation_id()),  # not at a '-' boundary
        handle_of(new_correlation_id()) + "-",  # not at the end
        handle_of(new_correlation_id()).upper(),
    ],
)
def test_what_is_no_handle(value: str) -> None:
    assert request_id_of_handle(value) is None


def test_a_remembered_handle_is_a_carrier_after_the_others() -> None:
    memory = ScopeMemory()
    rid = new_correlation_id()
    memory.remember(rid, "{swift-object: Corte}")
    headers = {"X-Trans-Id": f"txabc-0063a1b2c3-{handle_of(rid)}"}
    found = read_scope_text(headers, 4096, memory, (SWIFT,))
    assert found is not None
    assert (found.text, found.carrier, found.request_id) == ("{swift-object: Corte}", "handle", rid)
    assert read_scope_text(headers, 4096, memory) is None  # not declared: not read
    assert read_scope_text(headers, 4096, ScopeMemory(), (SWIFT,)) is None  # not remembered
    explicit = read_scope_text(
        {**headers, "X-Scope": "{swift-object: Paris}"}, 4096, memory, (SWIFT,)
    )
    assert explicit is not None and explicit.carrier == "x-scope"


def _config(**extra: Any) -> dict[str, Any]:
    return {
        "site": "Paris",
        "listen": "127.0.0.1:0",
        "private_key": KEY,
        "services": [{"type": "swift", "port": 0, "backend": "http://127.0.0.1:1"}],
        **extra,
    }


def test_config_declares_carriers() -> None:
    config = parse_config(
        _config(
            carriers=[{"read": "X-Trans-Id", "write": "X-Trans-Id-Extra", "services": ["swift"]}]
        )
    )
    assert config.carriers == (SWIFT,)
    assert config.carriers[0].writes_to("object-store")
    assert not config.carriers[0].writes_to("compute")
    read_only = parse_config(_config(carriers=[{"read": "traceparent"}])).carriers[0]
    assert read_only.write is None and not read_only.writes_to("compute")


@pytest.mark.parametrize(
    ("carriers", "message"),
    [
        ([{"write": "X-A"}], "missing 'carriers[0].read'"),
        ([{"read": "X Trans"}], "is not an HTTP header name"),
        ([{"read": "X-A", "services": ["swift"]}], "give 'write' too"),
        ([{"read": "X-A", "write": "X-B", "services": "swift"}], "expected a list"),
        ([{"read": "X-Scope"}], "the proxy's own carriers"),
        ([{"read": "X-A", "write": "X-Auth-Token"}], "the proxy's own carriers"),
        ([{"read": "X-A", "where": "end"}], "unknown key 'where'"),
        ([{"read": "X-A"}, {"read": "X-A"}], "duplicate read"),
        ({"read": "X-A"}, "expected an array of tables"),
    ],
)
def test_bad_carriers_are_refused_with_the_reason(carriers: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(_config(carriers=carriers))


def test_plain_token_must_be_a_boolean() -> None:
    services = [{"type": "swift", "port": 0, "backend": "http://x", "plain_token": "yes"}]
    with pytest.raises(ConfigError, match="plain_token: expected true or false"):
        parse_config(_config(services=services))


TRANS = [{"read": "X-Trans-Id", "write": "X-Trans-Id-Extra", "services": ["compute"]}]


async def test_the_backend_gets_a_handle_and_calls_back_with_it(sites: Any) -> None:
    paris, corte = await sites("Paris", "Corte", carriers=TRANS)
    status, _, body = await paris.get("/compute/echo", headers={"X-Scope": "{image: Corte}"})
    assert status == 200 and body["site"] == "Paris"
    handle = body["headers"]["X-Trans-Id-Extra"]
    rid = body["headers"]["X-OpenStack-Request-ID"]
    assert handle == handle_of(rid)
    # the backend's own call to a neighbour carries only its own id, the handle at its end
    status, _, body = await paris.get(
        "/image/echo", headers={"X-Trans-Id": f"tx0123456789abcdef01234-0063a1b2c3-{handle}"}
    )
    assert status == 200 and body["site"] == "Corte"
    assert body["headers"]["X-OpenStack-Request-ID"] == rid  # the call goes on under its id
    assert "X-Trans-Id-Extra" not in body["headers"]  # image is not a declared service
    # the peer remembered it too: a call at Corte with the handle alone finds the scope
    status, _, body = await corte.get("/compute/echo", headers={"X-Trans-Id": f"tx-{handle}"})
    assert status == 200 and body["headers"]["X-Scope"] == "{image: Corte, identity: Paris}"


async def test_no_declared_carrier_no_handle(sites: Any) -> None:
    paris, _corte = await sites("Paris", "Corte")
    status, _, body = await paris.get("/compute/echo", headers={"X-Scope": "{image: Corte}"})
    assert status == 200 and "X-Trans-Id-Extra" not in body["headers"]
    handle = handle_of(body["headers"]["X-OpenStack-Request-ID"])
    status, _, body = await paris.get("/image/echo", headers={"X-Trans-Id": f"tx-{handle}"})
    assert status == 200 and body["site"] == "Paris"  # X-Trans-Id is nothing to this proxy


async def test_an_unknown_handle_is_local(sites: Any) -> None:
    paris, _corte = await sites("Paris", "Corte", carriers=TRANS)
    handle = handle_of(new_correlation_id())
    status, _, body = await paris.get("/image/echo", headers={"X-Trans-Id": f"tx-{handle}"})
    assert status == 200 and body["site"] == "Paris" and "X-Scope" not in body["headers"]


async def test_a_plain_token_backend_gets_the_token_unchanged(sites: Any) -> None:
    paris, _corte = await sites("Paris", "Corte", plain_tokens=("compute",))
    headers = {"X-Auth-Token": "tok", "X-Scope": "{image: Corte}"}
    status, _, body = await paris.get("/compute/echo", headers=headers)
    assert status == 200 and body["headers"]["X-Auth-Token"] == "tok"
    assert body["headers"]["X-Scope"] == "{image: Corte, identity: Paris}"
    status, _, body = await paris.get("/image/echo", headers=headers)  # image: not plain
    assert status == 200 and body["site"] == "Corte"
    assert split_piggyback(body["headers"]["X-Auth-Token"])[1] is not None
