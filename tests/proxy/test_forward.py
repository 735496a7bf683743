"""Every aiohttp client exception is mapped to SiteUnreachable at the one boundary."""

from __future__ import annotations

import contextlib
import inspect

import aiohttp
import pytest

from edgescope.errors import SiteUnreachable
from edgescope.proxy.forward import end_to_end, mapped_errors


def client_exception_classes() -> list[type[BaseException]]:
    return [
        obj
        for name in aiohttp.__all__
        if inspect.isclass(obj := getattr(aiohttp, name))
        and issubclass(obj, aiohttp.ClientError | TimeoutError)
    ]


def instance(cls: type[BaseException]) -> BaseException:
    """Build an instance of an aiohttp exception without knowing its constructor."""
    exc = cls.__new__(cls)
    for attr, value in (
        ("args", ("boom",)),
        ("_os_error", ConnectionRefusedError(111, "x")),
        ("_conn_key", None),
        ("message", "boom"),
        ("status", 0),
        ("request_info", None),
        ("history", ()),
        ("headers", None),
    ):
        with contextlib.suppress(AttributeError):
            setattr(exc, attr, value)
    return exc


@pytest.mark.parametrize("cls", client_exception_classes(), ids=lambda c: c.__name__)
def test_all_client_exceptions_mapped(cls: type[BaseException]) -> None:
    with pytest.raises(SiteUnreachable) as info, mapped_errors("Corte"):
        raise instance(cls)
    assert info.value.site == "Corte" and info.value.reason


def test_timeouts_and_refusals_have_plain_reasons() -> None:
    with pytest.raises(SiteUnreachable, match="timed out"), mapped_errors("Corte"):
        raise TimeoutError
    with pytest.raises(SiteUnreachable, match="connection refused"), mapped_errors("Corte"):
        raise instance(aiohttp.ClientConnectorError)


def test_hop_by_hop_headers_are_not_forwarded() -> None:
    out = end_to_end(
        {
            "Connection": "keep-alive, X-Private",
            "X-Private": "1",
            "Host": "h",
            "Transfer-Encoding": "chunked",
            "X-Auth-Token": "t",
        }
    )
    assert dict(out) == {"X-Auth-Token": "t"}


def test_upstream_sockets_close_abortively() -> None:
    """SO_LINGER 0: a request given up across a cut link is not delivered after it heals."""
    import socket
    import struct

    from edgescope.proxy.forward import abortive_socket

    sock = abortive_socket((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80)))
    try:
        linger = sock.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.calcsize("ii"))
        assert struct.unpack("ii", linger) == (1, 0)
    finally:
        sock.close()


def test_peer_sockets_retransmit_at_least_once_a_second() -> None:
    """Client sockets and listeners (whose accepted connections inherit it) cap the
    retransmission back-off at 1 s, where the kernel knows the option."""
    import socket

    from edgescope.proxy.forward import RTO_MAX_MS, TCP_RTO_MAX_MS, abortive_socket

    probe = socket.socket()
    try:
        probe.getsockopt(socket.IPPROTO_TCP, TCP_RTO_MAX_MS)
    except OSError:
        pytest.skip("this kernel has no TCP_RTO_MAX_MS (Linux 6.15+)")
    finally:
        probe.close()
    info = (socket.AF_INET, socket.SOCK_STREAM, 0, "", ("127.0.0.1", 0))
    client = abortive_socket(info)
    with client:
        assert client.getsockopt(socket.IPPROTO_TCP, TCP_RTO_MAX_MS) == RTO_MAX_MS


def test_a_cached_key_id_is_the_key_id_of_that_very_key() -> None:
    """Hops sign and check with cached key ids (issue 23): each must be its own key's id,
    for a private key (its public half) and a public key, however many keys are about."""
    from edgescope.proxy.keys import cached_key_id, generate, key_id

    keys = [generate() for _ in range(5)]
    for _ in range(2):  # the second round reads the cache
        for key in keys:
            assert cached_key_id(key) == key_id(key.public_key())
            public = key.public_key()
            assert cached_key_id(public) == key_id(public)
    assert len({cached_key_id(k) for k in keys}) == 5


def test_end_to_end_keeps_every_value_and_order_and_matches_names_in_any_case() -> None:
    from multidict import CIMultiDict

    headers = CIMultiDict(
        [
            ("Accept", "a"),
            ("connection", "x-private, , KEEP-ALIVE"),
            ("X-PRIVATE", "1"),
            ("Keep-Alive", "timeout=5"),
            ("Accept", "b"),
            ("TE", "trailers"),
            ("X-Scope", "{image: Paris}"),
        ]
    )
    out = end_to_end(headers)
    assert list(out.items()) == [("Accept", "a"), ("Accept", "b"), ("X-Scope", "{image: Paris}")]
    assert "X-Private" in headers  # the request's own headers are left as they were
