"""Scope carriers: precedence, piggyback format, baggage, rewriting, limits."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from edgescope.errors import ScopeError, ScopeSyntaxError
from edgescope.proxy.carriers import (
    ScopeHeaderTooLarge,
    ScopeMemory,
    attach_piggyback,
    baggage_scope,
    read_scope_text,
    rewrite_carriers,
    set_baggage_scope,
    split_piggyback,
)


def test_piggyback_round_trip_and_format() -> None:
    token = attach_piggyback("gAAAAB-token", "{image: Corte}")
    assert token == "gAAAAB-token~scope~e2ltYWdlOiBDb3J0ZX0"  # base64url, no padding
    assert split_piggyback(token) == ("gAAAAB-token", "{image: Corte}")
    assert split_piggyback("plain") == ("plain", None)
    assert attach_piggyback(token, "{image: Paris}").count("~scope~") == 1


@pytest.mark.parametrize(("encoded", "column"), [("e2lt!WdlOn0", 4), ("abcde", 4), ("é", 0)])
def test_bad_base64_has_a_caret(encoded: str, column: int) -> None:
    with pytest.raises(ScopeSyntaxError) as info:
        split_piggyback("tok~scope~" + encoded)
    assert info.value.pos == column
    assert info.value.context().splitlines()[1].index("^") == column


def test_precedence_x_scope_then_token_then_baggage_then_request_id() -> None:
    rid = "req-12345678-1234-1234-1234-123456789abc"
    headers = CIMultiDict(
        {
            "X-Scope": "{image: A}",
            "X-Auth-Token": attach_piggyback("t", "{image: B}"),
            "X-Subject-Token": attach_piggyback("t", "{image: C}"),
            "baggage": "k=v,scope=%7Bimage%3A%20D%7D",
            "X-OpenStack-Request-ID": rid,
        }
    )
    memory = ScopeMemory()
    memory.remember(rid, "{image: E}")
    expected = [
        ("x-scope", "{image: A}"),
        ("token", "{image: B}"),
        ("token", "{image: C}"),
        ("baggage", "{image: D}"),
        ("request-id", "{image: E}"),
    ]
    for name in ("X-Scope", "X-Auth-Token", "X-Subject-Token", "baggage", None):
        found = read_scope_text(headers, 4096, memory)
        assert found is not None and (found.carrier, found.text) == expected.pop(0)
        if name is not None:
            del headers[name]
    assert read_scope_text(CIMultiDict(), 4096, memory) is None


def test_size_limit_on_every_carrier() -> None:
    big = "{image: " + "A" * 5000 + "}"
    for headers in (
        {"X-Scope": big},
        {"X-Auth-Token": attach_piggyback("t", big)},
        {"baggage": set_baggage_scope(None, big)},
    ):
        with pytest.raises(ScopeHeaderTooLarge, match="limit is 4096"):
            read_scope_text(CIMultiDict(headers), 4096)


def test_baggage_keeps_other_members() -> None:
    header = set_baggage_scope("userId=alice,scope=old;p=1", "{compute: Paris & Corte}")
    assert header.startswith("userId=alice,scope=")
    assert baggage_scope(header) == "{compute: Paris & Corte}"


def test_rewrite_sets_every_present_carrier_and_strips_for_identity() -> None:
    headers = CIMultiDict(
        {
            "X-Auth-Token": attach_piggyback("tok", "{image: Paris & Corte}"),
            "X-Subject-Token": "plain-subject",
            "baggage": "scope=x",
        }
    )
    rewrite_carriers(headers, "{image: Corte}")
    assert split_piggyback(headers["X-Auth-Token"]) == ("tok", "{image: Corte}")
    assert headers["X-Subject-Token"] == "plain-subject"  # no piggyback added to a bare token
    assert baggage_scope(headers["baggage"]) == "{image: Corte}"
    assert headers["X-Scope"] == "{image: Corte}"
    rewrite_carriers(headers, "{image: Corte}", strip_tokens=True)
    assert headers["X-Auth-Token"] == "tok"


def test_rewrite_piggybacks_the_auth_token_whichever_carrier_brought_the_scope() -> None:
    headers = CIMultiDict(
        {"X-Auth-Token": "tok", "X-Subject-Token": "subject", "X-Scope": "{image: Corte}"}
    )
    rewrite_carriers(headers, "{image: Corte, identity: Paris}")
    assert split_piggyback(headers["X-Auth-Token"]) == ("tok", "{image: Corte, identity: Paris}")
    assert headers["X-Subject-Token"] == "subject"  # X-Subject-Token: as before
    rewrite_carriers(headers, "{image: Paris}")  # a second proxy replaces, never appends
    assert headers["X-Auth-Token"].count("~scope~") == 1
    assert split_piggyback(headers["X-Auth-Token"]) == ("tok", "{image: Paris}")
    rewrite_carriers(headers, "{image: Paris}", strip_tokens=True)
    assert (headers["X-Auth-Token"], headers["X-Subject-Token"]) == ("tok", "subject")
    empty = CIMultiDict({"X-Auth-Token": ""})
    rewrite_carriers(empty, "{image: Paris}")
    assert empty["X-Auth-Token"] == ""  # no token: nothing to piggyback on


def test_memory_is_bounded() -> None:
    memory = ScopeMemory(capacity=2)
    for i in range(3):
        memory.remember(f"r{i}", "{}")
    assert list(memory) == ["r1", "r2"]


def test_one_owners_flood_evicts_its_own_entries_only() -> None:
    memory = ScopeMemory(capacity=100, per_owner=10)
    memory.remember("victim", "{image: Corte}", owner="10.0.0.1")
    for i in range(1000):
        memory.remember(f"flood-{i}", "{image: Paris}", owner="10.0.0.66")
    assert memory["victim"] == "{image: Corte}"
    assert len(memory) == 11


@given(
    value=st.text(max_size=300),
    header=st.sampled_from(
        ["X-Scope", "X-Auth-Token", "X-Subject-Token", "baggage", "X-OpenStack-Request-ID"]
    ),
)
def test_reading_carriers_never_fails_with_anything_but_a_scope_error(
    value: str, header: str
) -> None:
    for text in (value, "tok~scope~" + value, "scope=" + value):
        with contextlib.suppress(ScopeError):
            read_scope_text(CIMultiDict({header: text}), 4096, ScopeMemory())


@given(text=st.text(max_size=200))
def test_piggyback_round_trips_any_text(text: str) -> None:
    assert split_piggyback(attach_piggyback("tok", text)) == ("tok", text)
    assert baggage_scope(set_baggage_scope("a=b", text)) == text


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('a="b,scope=%7Bimage%3A%20Corte%7D,c="', "{image: Corte}"),  # no quoting in baggage
        (" \tscope \t=%7Bimage%3A%20Corte%7D ", "{image: Corte}"),  # HTTP's OWS is trimmed
        ("\u200bscope=x", None),  # not whitespace at all: another key
    ],
)
def test_baggage_keys_are_trimmed_of_http_whitespace_only(
    header: str, expected: str | None
) -> None:
    assert baggage_scope(header) == expected


@pytest.mark.parametrize(
    "header", ["\u00a0scope=%7Bx%7D", "scope\u3000=%7Bx%7D", "a=1,\u2003scope=1"]
)
def test_a_scope_key_with_other_unicode_whitespace_is_refused(header: str) -> None:
    """Issue 20, finding 10: HAProxy's fast path trims no such space; reading it here would
    route a call HAProxy treats as unscoped, so it is a 400 (test_fast_path runs it live)."""
    with pytest.raises(ScopeSyntaxError, match="whitespace other than spaces and tabs"):
        baggage_scope(header)


def test_the_id_text_is_the_uuid_modules_and_the_tag_hmac_sha256() -> None:
    """The hot path formats ids and computes their tags without ``uuid.UUID`` and
    ``hmac.new`` objects (docs/design.md, "Hot path"): the same text, the same tag."""
    import hashlib
    import hmac
    import uuid

    from edgescope.proxy.carriers import CorrelationIds, _uuid_text

    for value in (0, 1, (1 << 128) - 1, 0x0123456789ABCDEF0123456789ABCDEF):
        assert _uuid_text(value) == f"req-{uuid.UUID(int=value)}"
    ids = CorrelationIds(b"k" * 32)
    expected = hmac.new(b"k" * 32, (42).to_bytes(8, "big"), hashlib.sha256).digest()[:8]
    assert ids._tag(42) == int.from_bytes(expected, "big")
    assert ids.issued(ids.mint())
