"""The error model: every edgescope error carries its answer, and a bug is a 500 that is logged.

The server turns errors into answers in one place (``SiteProxy._answer``): these tests check
that each error class answers with its code, that a refusal keeps its own status and title,
and that an unexpected exception (here an extension's bug, on a real proxy) is a logged 500,
never the failure of a site.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest
from aiohttp import web

from edgescope.errors import (
    AnswerTooLarge,
    BodyTooLarge,
    ClientBodyFailed,
    EdgescopeError,
    ErrorCode,
    Refused,
    ScopeSyntaxError,
    SiteUnreachable,
)
from edgescope.proxy.body import SpoolFull
from edgescope.proxy.call import BranchReply, BranchRequest, Call
from edgescope.proxy.carriers import ScopeHeaderTooLarge
from edgescope.proxy.extension import Finished, ProxyServices, Recorded, SendBranch
from edgescope.proxy.ingress import BadRequest
from edgescope.proxy.protocol import ERROR_HEADER, ForgedHop, NotTrusted, ProtocolMismatch
from edgescope.proxy.route import FanoutTooWide, LoopDetected, Plan
from edgescope.proxy.spool import Busy

SitesFactory = Any


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ScopeSyntaxError("expected '}'", "{image: Corte", 13), ErrorCode.BAD_SCOPE),
        (ScopeHeaderTooLarge("too large"), ErrorCode.SCOPE_TOO_LARGE),
        (FanoutTooWide("too wide", "{image: A & B}", 0), ErrorCode.FANOUT_TOO_WIDE),
        (ForgedHop("forged"), ErrorCode.HOP_FORBIDDEN),
        (NotTrusted("not trusted"), ErrorCode.HOP_FORBIDDEN),
        (ProtocolMismatch("v9"), ErrorCode.PROTOCOL_MISMATCH),
        (BadRequest("dot segment"), ErrorCode.BAD_REQUEST),
        (AnswerTooLarge("big"), ErrorCode.TOO_LARGE),
        (Busy("busy"), ErrorCode.BUSY),
        (SpoolFull("full"), ErrorCode.BUSY),
        (BodyTooLarge("over"), ErrorCode.BODY_TOO_LARGE),
        (ClientBodyFailed("broke off"), ErrorCode.CLIENT_BODY),
        (LoopDetected("loop"), ErrorCode.LOOP_DETECTED),
    ],
)
def test_each_error_answers_with_its_code(error: EdgescopeError, code: ErrorCode) -> None:
    status, title, message = error.answer() or (0, "", "")
    assert (status, title) == (code.http_status(), code.title)
    assert message.startswith(str(error.args[0]))


def test_fanout_too_wide_answers_without_a_column() -> None:
    assert FanoutTooWide("too wide", "{image: A & B}", 0).answer()[2] == "too wide"


def test_a_refusal_keeps_its_status_and_names_it_by_default() -> None:
    assert Refused(409, "busy").answer() == (409, "Conflict", "busy")
    assert Refused(503, "later").answer() == (503, "Refused", "later")
    assert Refused(411, "length", title="Length Required").answer() == (
        411,
        "Length Required",
        "length",
    )


def test_errors_that_do_not_end_a_call_have_no_answer() -> None:
    assert SiteUnreachable("Corte", "refused").answer() is None
    assert EdgescopeError("plain").answer() is None


class Buggy:
    """An extension whose ``join`` has a bug: the proxy must answer 500, not blame a site."""

    name = "buggy"
    events = ("join",)

    def routes(self) -> Sequence[web.RouteDef]:
        return []

    async def start(self, proxy: ProxyServices) -> None:
        return None

    async def stop(self) -> None:
        return None

    def join(self, call: Call, plan: Plan, body: bytes | None) -> Buggy.Hooks | None:
        if "joinbug" in call.path:
            raise KeyError("a bug of the extension")
        return Buggy.Hooks() if "localbug" in call.path else None

    class Hooks:
        """Its local branch has a bug: the call fails as a bug, not as Paris's failure."""

        reads_replies = False
        queues_writes = False

        def branch(self, request: BranchRequest) -> BranchRequest:
            return request

        async def apply_local(self, request: BranchRequest, send: SendBranch) -> BranchReply:
            raise KeyError("a bug of the local hook")

        async def record(self, finished: Finished) -> Recorded:
            return Recorded()

        def collapse(self, body: bytes, replies: Sequence[BranchReply]) -> bytes:
            return body


@pytest.mark.parametrize("where", ["joinbug", "localbug"])
async def test_a_bug_is_a_logged_500_not_a_site_failure(
    sites: SitesFactory, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    paris, _ = await sites("Paris", "Corte", extensions={"Paris": [Buggy()]})
    with caplog.at_level(logging.ERROR, logger="edgescope.proxy"):
        status, headers, body = await paris.get(
            f"/image/{where}", headers={"X-Scope": "{image: Paris & Corte}"}
        )
    assert status == 500
    assert headers[ERROR_HEADER] == ErrorCode.INTERNAL_ERROR.title
    assert body["error"]["message"] == "edgescope proxy error: KeyError"
    assert any(r.exc_info and r.exc_info[0] is KeyError for r in caplog.records)
    status, _, _ = await paris.get("/image/echo", headers={"X-Scope": "{image: Corte}"})
    assert status == 200  # the same proxy still serves calls without the bug
