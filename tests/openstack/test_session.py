"""Carriers on a real keystoneauth session (token from keystoneauth1.fixture), on loopback."""

from __future__ import annotations

import asyncio
import io
import json

import pytest
import requests
from keystoneauth1 import fixture, session
from keystoneauth1.access import create as create_access
from keystoneauth1.identity.access import AccessInfoPlugin
from osc_recorder import Recorder

from edgescope.lang import parse_scope, unparse
from edgescope.openstack.session import (
    DIVERGED_FIELD,
    OriginRecorder,
    SiteFailureReporter,
    attach_scope,
    scope_headers,
    unauthenticated_scope,
)
from edgescope.proxy.carriers import read_scope_text
from edgescope.proxy.merge import ORIGIN_FIELD
from edgescope.proxy.protocol import ERROR_HEADER, SITES_HEADER


def _session_with_token() -> tuple[session.Session, str]:
    token = fixture.V3Token(user_name="alice", project_name="demo")
    token.set_project_scope()
    auth_ref = create_access(body=token, auth_token="gAAAAB-fernet-like")
    return session.Session(auth=AccessInfoPlugin(auth_ref)), "gAAAAB-fernet-like"


async def test_authenticated_requests_carry_both_carriers(recorder: Recorder) -> None:
    sess, token = _session_with_token()
    scope = parse_scope("{compute: Paris, image: Corte, identity: Paris}")
    attach_scope(sess, scope)
    await asyncio.to_thread(sess.get, f"{recorder.url}/compute/v2.1/servers", raise_exc=False)
    headers = recorder.requests[0].headers
    assert headers["X-Scope"] == "{compute: Paris, image: Corte, identity: Paris}"
    assert headers["X-Auth-Token"].startswith(token + "~scope~")
    # the proxy's own reader finds the same scope in the token alone
    found = read_scope_text({"X-Auth-Token": headers["X-Auth-Token"]}, max_bytes=4096)
    assert found is not None and found.carrier == "token"
    assert found.text == "{compute: Paris, image: Corte, identity: Paris}"


async def test_unauthenticated_requests_authenticate_at_one_identity_site(
    recorder: Recorder,
) -> None:
    sess, _ = _session_with_token()
    attach_scope(sess, parse_scope("{glance: Corte, keystone: Paris & Corte}"))
    await asyncio.to_thread(
        sess.post, f"{recorder.url}/identity/v3/auth/tokens", authenticated=False, raise_exc=False
    )
    headers = recorder.requests[0].headers
    assert headers["X-Scope"] == "{image: Corte, identity: Paris}"
    assert "X-Auth-Token" not in headers


def test_attaching_twice_does_not_piggyback_twice() -> None:
    sess, _token = _session_with_token()
    scope = parse_scope("{glance: Corte, keystone: Paris}")
    attach_scope(sess, scope)
    attach_scope(sess, scope)
    headers = sess.get_auth_headers()
    assert headers is not None and headers["X-Auth-Token"].count("~scope~") == 1


def test_scope_headers_keeps_failure_as_failure() -> None:
    assert scope_headers(None, "{glance: Corte}") is None
    assert scope_headers({}, "{glance: Corte}") == {"X-Scope": "{glance: Corte}"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{keystone: Paris, nova: Corte}", "{identity: Paris, compute: Corte}"),
        ("{keystone: Paris | Corte}", "{identity: Paris | Corte}"),
        ("{keystone: Corte & Paris}", "{identity: Corte}"),
        ("{keystone: (Corte | Nice) & Paris}", "{identity: Corte}"),
        ("{nova: Paris}", "{compute: Paris}"),
    ],
)
def test_scope_for_the_token_request(text: str, expected: str) -> None:
    assert unparse(unauthenticated_scope(parse_scope(text))) == expected


@pytest.mark.parametrize(
    ("text", "own_site", "expected"),
    [
        ("{keystone: Paris & Corte}", "Corte", "{identity: Corte}"),
        ("{keystone: Paris & Corte}", "Paris", "{identity: Paris}"),
        ("{keystone: Paris & Corte}", "Marseille", "{identity: Paris}"),
        ("{keystone: (Corte | Nice) & Paris}", "Nice", "{identity: Nice}"),
        ("{keystone: Paris | Corte}", "Corte", "{identity: Paris | Corte}"),
    ],
)
def test_the_token_request_goes_to_the_users_own_site_of_an_and(
    text: str, own_site: str, expected: str
) -> None:
    """A Corte admin's password is Corte's: authenticating at Paris would be a 401."""
    assert unparse(unauthenticated_scope(parse_scope(text), own_site)) == expected


def test_origin_recorder_learns_sites_of_merged_items() -> None:
    recorder = OriginRecorder()
    recorder.record(
        {
            "servers": [
                {"id": "a", ORIGIN_FIELD: "Paris"},
                {"id": "b", ORIGIN_FIELD: "Corte"},
                {"id": "c"},
            ],
            "servers_links": [],
        }
    )
    recorder.record(["not", "a", "collection"])
    assert recorder.sites_by_id == {"a": "Paris", "b": "Corte"}


def _response(status: int, body: object, headers: dict[str, str]) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers.update({"Content-Type": "application/json", **headers})
    return response


def test_site_failures_are_reported_once_and_only_for_proxy_5xx() -> None:
    stream = io.StringIO()
    reporter = SiteFailureReporter(stream)
    failed = {
        "error": {"code": 503, "message": "image: every site failed (Corte: 502; Marseille: 502)"}
    }
    reporter(_response(503, failed, {SITES_HEADER: "Corte=502, Marseille=502"}))
    reporter(_response(503, failed, {SITES_HEADER: "Corte=502, Marseille=502"}))
    reporter(_response(404, failed, {SITES_HEADER: "Corte=404"}))  # plain not-found: OSC's job
    reporter(_response(503, failed, {}))  # not from the proxy's fan-out
    one_site = {"error": {"code": 503, "message": "site Corte is unreachable: timeout"}}
    reporter(_response(503, one_site, {ERROR_HEADER: "Site Unreachable"}))
    assert stream.getvalue() == (
        "edgescope: image: every site failed (Corte: 502; Marseille: 502)\n"
        "edgescope: site Corte is unreachable: timeout\n"
    )


def test_failed_ands_and_diverged_members_are_reported() -> None:
    stream = io.StringIO()
    reporter = SiteFailureReporter(stream)
    undone = {"error": {"message": "compute: 1 of 2 sites failed (...); undone: Paris: p1"}}
    reporter(_response(400, undone, {SITES_HEADER: "Paris=202, Corte=400", ERROR_HEADER: "x"}))
    reporter(_response(400, undone, {}))  # a backend's own 400: OSC shows it
    server = {
        "server": {"id": "p1", "name": "vm", DIVERGED_FIELD: "status: Paris=ACTIVE, Corte=ERROR"}
    }
    reporter(_response(200, server, {SITES_HEADER: "Paris=200, Corte=200"}))
    reporter(_response(200, server, {SITES_HEADER: "Paris=200, Corte=200"}))
    assert stream.getvalue() == (
        "edgescope: compute: 1 of 2 sites failed (...); undone: Paris: p1\n"
        "edgescope: vm: status: Paris=ACTIVE, Corte=ERROR\n"
    )


def test_a_401_to_a_request_without_token_is_not_reported() -> None:
    """keystoneauth discovers versions without a token first; cinder's /v3/ answers 401."""
    stream = io.StringIO()
    reporter = SiteFailureReporter(stream)
    failed = {"error": {"message": "block-storage: every site failed (Paris: 401 failed)"}}
    anonymous = _response(401, failed, {SITES_HEADER: "Paris=401", ERROR_HEADER: "x"})
    anonymous.request = requests.Request("GET", "http://proxy/volume/v3/").prepare()
    reporter(anonymous)
    assert stream.getvalue() == ""
    with_token = _response(401, failed, {SITES_HEADER: "Paris=401", ERROR_HEADER: "x"})
    with_token.request = requests.Request(
        "GET", "http://proxy/volume/v3/", headers={"X-Auth-Token": "t"}
    ).prepare()
    reporter(with_token)
    assert stream.getvalue() == "edgescope: block-storage: every site failed (Paris: 401 failed)\n"
