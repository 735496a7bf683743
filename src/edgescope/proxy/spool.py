"""Keeping a client's body to resend it (``|``, or ``&`` with a ``|`` inside): who may, how much.

Neighbours: :mod:`dispatch` asks :meth:`Spools.open` before a fallback or a nested ``|``
reads the client's body; :mod:`body` does the keeping (:class:`ReplayableBody`) and counts
every spool against one :class:`SpoolBudget`; :mod:`sender` validates tokens.

Before a byte is kept:

* a body announced over ``max_spool_bytes``: 413;
* a body larger than :data:`UNCHECKED_SPOOL` or of unknown length (chunked): kept only for a
  token that the call's identity site accepts, asked of that site's Keystone (the local one
  with this proxy's own service token; a peer's through its proxy, which uses its own).
  No token, a refused one, or no way to ask: 401, nothing read. A call from a signed peer
  was checked by the entry proxy;
* ``max_spools`` bodies kept already: 503; and while it arrives, past ``max_spool_total``
  bytes of all the kept bodies together: 503 (:class:`SpoolFull`).

    spools = Spools(config, sender, metrics)
    body = await spools.open(call, plan)      # ReplayableBody; body.close() gives it back
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from edgescope.errors import BodyTooLarge, EdgescopeError, ErrorCode, Refused, SiteUnreachable
from edgescope.lang import SiteRef, iter_sites, quote_site
from edgescope.lang.registry import IDENTITY
from edgescope.proxy.body import SPOOL_IN_MEMORY, ReplayableBody, SpoolBudget
from edgescope.proxy.call import Call
from edgescope.proxy.carriers import (
    AUTH_TOKEN_HEADER,
    REQUEST_ID_HEADER,
    SCOPE_HEADER,
    split_piggyback_lenient,
)
from edgescope.proxy.config import ProxyConfig
from edgescope.proxy.forward import read_body
from edgescope.proxy.identity import VALIDATION_BODY_LIMIT
from edgescope.proxy.metrics import ProxyMetrics
from edgescope.proxy.protocol import PEER_PATH
from edgescope.proxy.route import Plan
from edgescope.proxy.sender import Sender

UNCHECKED_SPOOL = SPOOL_IN_MEMORY
"""A body up to this size, its length announced, is kept (in memory) with no token check."""
MAX_TOKEN_SITES = 3
"""Most identity sites of a scope asked about an upload's token (a client's long
``identity: A | B | ...`` must not cost a signed hop per site before its 401)."""
PEER_VALIDATION_PATH = f"{PEER_PATH}identity/v3/auth/tokens?nocatalog"


class Busy(EdgescopeError):
    """Too many calls keep a body to resend, or too many bytes (-> 503, retry)."""

    code = ErrorCode.BUSY


class Spools:
    """The spool guard of one proxy: token check first, then the shared budget."""

    def __init__(self, config: ProxyConfig, sender: Sender, metrics: ProxyMetrics) -> None:
        self.config = config
        self.sender = sender
        limits = config.limits
        self.budget = SpoolBudget(limits.max_spools, limits.max_spool_total)
        metrics.watch_spools(self.budget)

    async def open(self, call: Call, plan: Plan) -> ReplayableBody:
        """The client's body, kept as it streams; raises before reading a byte if refused."""
        limits, request = self.config.limits, call.request
        length = request.content_length
        if length is not None and length > limits.max_spool_bytes:
            raise BodyTooLarge(
                f"the body is {length} bytes; max_spool_bytes is {limits.max_spool_bytes}"
            )
        if call.from_peer is None and (length is None or length > UNCHECKED_SPOOL):
            await self._check_token(call, plan)
        hold = self.budget.hold()
        if hold is None:
            raise Busy(f"{self.budget.count} uploads are being kept to be resent; retry soon")
        source = call.body_stream(limits.client_idle_timeout, limits.max_spool_bytes, hold)
        return ReplayableBody(source or _nothing(), hold)

    async def _check_token(self, call: Call, plan: Plan) -> None:
        token = split_piggyback_lenient(call.request.headers.get(AUTH_TOKEN_HEADER, ""))[0]
        if not token.strip():
            raise Refused(401, "a large or chunked upload to several sites needs a token")
        sites = identity_sites(plan, self.config.site)
        answers = []
        for site in sites[:MAX_TOKEN_SITES]:
            answer = await self._validate(site, token, call)
            if answer == 200:
                return
            answers.append(f"{site}: {answer}")
        if len(sites) > MAX_TOKEN_SITES:
            answers.append(f"{len(sites) - MAX_TOKEN_SITES} more not asked")
        self.budget.refused += 1
        raise Refused(
            401,
            "a large or chunked upload to several sites is kept only for a token its "
            f"identity site accepts; none did ({', '.join(answers)}): nothing was read",
        )

    async def _validate(self, site: str, token: str, call: Call) -> int | str:
        """The status of ``GET /v3/auth/tokens`` for ``token`` at ``site``, or why none."""
        try:
            if site == self.config.site:
                if self.sender.tokens is None:
                    return "this proxy has no [identity] to check tokens with"
                return await self.sender.validation_status(token)
            headers = {
                "X-Subject-Token": token,
                REQUEST_ID_HEADER: call.request_id,
                SCOPE_HEADER: f"{{identity: {quote_site(site)}}}",
            }
            response = await self.sender.open_peer(
                site, "GET", PEER_VALIDATION_PATH, headers, None, call.hops
            )
            await read_body(response, site, VALIDATION_BODY_LIMIT)
            return response.status
        except SiteUnreachable as exc:
            return exc.reason


def identity_sites(plan: Plan, local_site: str) -> list[str]:
    """Where the call's token is validated: its scope's identity sites (local by default)."""
    expr = plan.downstream.expr_for(IDENTITY) if plan.downstream is not None else None
    if expr is None or isinstance(expr, SiteRef):
        return [expr.name if expr is not None else local_site]
    return list(dict.fromkeys(ref.name for ref in iter_sites(expr)))


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield  # an async generator with no items
