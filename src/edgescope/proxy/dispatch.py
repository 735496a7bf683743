"""Run a routing :class:`~edgescope.proxy.route.Plan`: one site, ``|`` fallback or ``&`` fan-out.

The one engine of the proxy. ``server.py`` builds the :class:`~call.Call` and the plan;
this module sends each branch through :mod:`sender`, lets scope-lang's ``evaluate`` apply
``&``/``|``, judges the outcome (:mod:`outcome`), merges answers (:mod:`merge`) and lets
the extensions (:mod:`extension`) take part through their hooks.

* one site: bodies stream both ways, unless an extension reads the answer whole;
* ``|``: each attempt replays the request body (a spool records it as the first one
  streams); a small answer is read inside its attempt, so one that stalls falls back;
* ``&``: a flat ``&`` tees the request body to every branch (a nested ``|`` spools it
  first); branch answers are read whole (bounded), judged, recorded, merged.

A small JSON request body (up to :data:`WHOLE_BODY`) is read whole first when an extension
asks for it, so that extensions can rewrite it per branch.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from typing import Any

from aiohttp import web

from edgescope.errors import (
    AnswerTooLarge,
    ClientBodyFailed,
    SiteUnreachable,
    WriteInDoubt,
)
from edgescope.lang import And, Expr, SiteRef, evaluate
from edgescope.lang.evaluate import Attempt
from edgescope.proxy.body import BodyTee, ReplayableBody
from edgescope.proxy.call import BranchReply, BranchRequest, BranchTrace, Call, ClientRequest
from edgescope.proxy.carriers import (
    REMEMBERED_CARRIERS,
    REQUEST_ID_HEADER,
    ScopeMemory,
    memory_owner,
)
from edgescope.proxy.config import ProxyConfig
from edgescope.proxy.delegation import Delegation
from edgescope.proxy.extension import (
    CallHooks,
    ExtensionSet,
    Finished,
    Join,
    Recorded,
    WantsBody,
    join_hooks,
)
from edgescope.proxy.forward import ReadBudget, read_body
from edgescope.proxy.hedge import HedgePolicy, Latencies, overtaken
from edgescope.proxy.merge import Merged, SiteResult, failure_response, merge_results, sites_header
from edgescope.proxy.metrics import ProxyMetrics
from edgescope.proxy.outcome import (
    READ_POLICY,
    Branch,
    Judgement,
    Verdict,
    branch_failed,
    judge,
    tried_before,
)
from edgescope.proxy.partial import PARTIAL, missing_sites, partial_header
from edgescope.proxy.protocol import PARTIAL_HEADER, PENDING_HEADER, SITES_HEADER
from edgescope.proxy.replies import (
    ERROR_BODY_LIMIT,
    SMALL_BODY,
    ClientLink,
    answer_headers,
    is_small,
    stream_back,
    unreachable,
    whole,
)
from edgescope.proxy.responses import json_error
from edgescope.proxy.route import Plan
from edgescope.proxy.sender import Sender, once, scope_text
from edgescope.proxy.siteclient import SiteAnswer
from edgescope.proxy.spool import Spools

WHOLE_BODY = 1024 * 1024
"""JSON request bodies up to this size are read whole when an extension asks."""


class Dispatcher:
    """Sends calls to sites and combines the answers."""

    def __init__(
        self,
        config: ProxyConfig,
        sender: Sender,
        metrics: ProxyMetrics,
        delegation: Delegation,
        memory: ScopeMemory,
        extensions: ExtensionSet | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.clock = clock
        """What the hedging decisions read the time from (a unit test's own clock)."""
        self.sender = sender
        self.metrics = metrics
        self.delegation = delegation
        self.memory = memory
        self.extensions = extensions if extensions is not None else ExtensionSet(())
        self.spools = Spools(config, sender, metrics)
        hedging = config.hedging
        self.latencies = Latencies(hedging.samples, hedging.window)
        """Each site's recent answer times: when a ``|`` read hedges (:mod:`hedge`)."""
        self.hedging = HedgePolicy(hedging)

    async def run(self, call: Call, plan: Plan, client: ClientLink) -> web.StreamResponse:
        """Answer ``call`` as ``plan`` says; a streamed answer goes out through ``client``."""
        verdict = await self.delegation.admit(call, plan, self.sender)
        if verdict.refusal is not None:
            call.chosen = [self.config.site]
            return verdict.refusal
        if plan.downstream is not None and call.carrier not in REMEMBERED_CARRIERS:
            if call.from_peer is None:  # a client's id could be another client's: a new one
                call.request_id = self.memory.mint()  # HAProxy can tell it (deploy/haproxy)
            self.memory.remember(
                call.request_id,
                scope_text(plan.downstream),
                memory_owner(call.request.remote, call.from_peer, call.request.headers),
            )
        body = await self._whole_body(call, plan)
        joins = self.extensions.handles(Join)
        hooks = join_hooks(self.extensions, call, plan, body) if joins else None
        if isinstance(plan.expr, SiteRef):
            return await self._single(call, plan, plan.expr.name, body, hooks, client)
        self.metrics.fanout.observe(len(plan.sites))
        if plan.merges:
            return await self._fan_out(call, plan, body, hooks)
        return await self._fall_back(call, plan, body, hooks, client)

    # -- one site ---------------------------------------------------------------------------

    async def _single(
        self,
        call: Call,
        plan: Plan,
        site: str,
        body: bytes | None,
        hooks: CallHooks | None,
        client: ClientLink,
    ) -> web.StreamResponse:
        call.chosen = [site]
        call.gives_up_on_open = False  # nowhere else to go: its own timeouts bound it
        branch = _branch(hooks, site, call.path, body)
        remote = site != self.config.site
        if hooks is not None and hooks.reads_replies:
            try:
                reply = await self._exchange(call, plan, branch, self._payload(call, branch), hooks)
            except SiteUnreachable as exc:
                return unreachable(call, exc)
            ok = not READ_POLICY(reply.status)
            verdict = Verdict.OK if ok else Verdict.FAILED
            recorded = await hooks.record(Finished(verdict, (reply,), (reply,) if ok else (), ()))
            extra = dict(recorded.headers)
            if remote:
                extra[SITES_HEADER] = f"{site}={reply.status}"
            return whole(call, reply, extra)
        try:
            response = await self._send(call, plan, branch, self._payload(call, branch))
        except SiteUnreachable as exc:
            return unreachable(call, exc)
        # A peer's answer says which site gave it: its backend's own error rarely does.
        extra = {SITES_HEADER: f"{site}={response.status}"} if remote else {}
        return await self._stream_back(call, client, response, site, extra)

    # -- | ----------------------------------------------------------------------------------

    async def _fall_back(
        self,
        call: Call,
        plan: Plan,
        body: bytes | None,
        hooks: CallHooks | None,
        client: ClientLink,
    ) -> web.StreamResponse:
        spool = None
        if body is None and call.request.has_body:
            spool = await self.spools.open(call, plan)

        doubt: list[SiteUnreachable] = []
        """A write sent to a site that gave no answer: it may be applied there, so it is not
        sent to the next site (only a write that surely reached nothing falls over)."""

        async def attempt(site: str) -> _Open:
            if doubt:
                raise SiteUnreachable(site, f"not tried: the write is in doubt at {doubt[0].site}")
            branch = _branch(hooks, site, call.path, body)
            payload = once(branch.body) if body is not None else None
            if spool is not None:
                payload = spool.replay()
            try:
                response = await self._send(call, plan, branch, payload)
                opened = _Open(site, response)
                # Read a small answer here, so that one whose body stalls still falls back (not
                # a validation: its remote answer gets the local catalog from the unread one).
                if is_small(call, response) and not call.is_validation:
                    opened.body = await self._read(site, response, SMALL_BODY)
            except SiteUnreachable as exc:
                if call.is_write and not exc.connecting:
                    doubt.append(exc)
                raise
            return opened

        try:
            outcome = await evaluate(
                plan.expr,
                attempt,
                lambda o: READ_POLICY(o.response.status),
                hedge_after=self._hedge_after(call),
                max_extra=self.config.hedging.max_extra,
                discard=self._lost_race,
            )
            if outcome.ok:
                self._note_abandoned(call, outcome.results[0][0])
            _raise_call_failure(outcome.attempts)
            if doubt and not outcome.ok:
                first = doubt[0]
                raise WriteInDoubt(
                    f"{call.request.method} to {call.service} at {first.site} got no answer "
                    f"({first.reason}): it may have been applied there, so it was not sent to "
                    f"another site; check {first.site} before retrying"
                )
            results = await self._results(outcome.attempts, read_failed=True)
            call.chosen = [r.site for r in results]
            if not outcome.ok:
                return self._failure(call, results, "|")
            winner: _Open = outcome.results[0][1]
            extra = {SITES_HEADER: sites_header(results)}
            return await self._stream_back(
                call, client, winner.response, winner.site, extra, winner.body
            )
        finally:
            if spool is not None:
                self._unspool(spool)

    def _hedge_after(self, call: Call) -> Callable[[Expr], float | None] | None:
        """When each site of this ``|`` is raced by the next: reads without a body only."""
        if not self.hedging.may_hedge(call.method) or call.request.has_body:
            return None
        min_samples = self.config.hedging.min_samples
        peers = self.sender.peers

        def delay(expr: Expr) -> float | None:
            if not isinstance(expr, SiteRef):
                return None
            p95 = self.latencies.p95(expr.name, now=self.clock(), min_samples=min_samples)
            suspect = expr.name in peers and peers.breaker(expr.name).suspect
            return self.hedging.delay(call.method, p95, suspect=suspect)

        return delay

    def _note_abandoned(self, call: Call, winner: str) -> None:
        """The sites this read stopped waiting for, a site asked later having answered first:
        suspect until their next success (hedge.py), though not failed."""
        abandoned = overtaken([(b.site, b.error) for b in call.branches], winner)
        if abandoned:
            self.metrics.hedges.labels(outcome="won").inc()  # the later site answered first
        for site in abandoned:
            if site in self.sender.peers:
                self.sender.peers.breaker(site).record_abandoned()

    def _lost_race(self, opened: _Open) -> None:
        """A hedged read answered after another site had: its answer is dropped."""
        self.metrics.hedges.labels(outcome="answered too late").inc()
        opened.response.close()

    # -- & ----------------------------------------------------------------------------------

    async def _fan_out(
        self, call: Call, plan: Plan, body: bytes | None, hooks: CallHooks | None
    ) -> web.StreamResponse:
        streams, close = await self._branch_bodies(call, plan, body)
        budget = ReadBudget(self.config.limits.max_merge_total)
        write = call.is_write
        before = tried_before(plan.expr) if write else {}
        doubt: list[str] = []
        """Sites a write was sent to that gave no answer: a nested ``|`` does not send it on
        to its next site (as ``_fall_back``); the sites not tried are not queued either."""
        skipped: set[str] = set()

        async def branch(site: str) -> BranchReply:
            blocker = next((s for s in doubt if s in before.get(site, ())), None)
            if blocker is not None:
                skipped.add(site)
                raise SiteUnreachable(
                    site, f"not tried: the write is in doubt at {blocker}", connecting=True
                )
            request = _branch(hooks, site, call.path, body)
            payload = once(request.body) if body is not None else streams(site)
            try:
                return await self._exchange(call, plan, request, payload, hooks, budget)
            except SiteUnreachable as exc:
                if write and not exc.connecting:
                    doubt.append(site)
                raise

        try:
            outcome = await evaluate(
                plan.expr, branch, lambda r: branch_failed(r.status, write=write)
            )
        finally:
            await close()
        _raise_call_failure(outcome.attempts)
        results = await self._results(outcome.attempts, read_failed=False)
        call.chosen = [r.site for r in results]
        ok_sites = {r.site for r in results if not r.failed}
        judgement = judge(
            [Branch(r.site, r.status, r.failed) for r in results],
            ok=outcome.ok,
            write=write,
            eventual=call.mode == "eventual",
            can_queue=hooks is not None and hooks.queues_writes,
        )
        if skipped:  # queued for the site in doubt (same key: applied once), not the next
            kept = tuple(s for s in judgement.pending if s not in skipped)
            judgement = Judgement(judgement.verdict, kept)
        missing = None
        if call.mode == PARTIAL:  # a read answered by the sites that could (partial.py)
            missing = missing_sites(results, ok=outcome.ok, write=write)
            judgement = Judgement(Verdict.DEGRADED) if missing else judgement
        replies = tuple(r for r, _ in _answered(outcome.attempts))
        recorded = Recorded()
        if hooks is not None:
            finished = Finished(
                judgement.verdict,
                replies,
                tuple(r for r, a in _answered(outcome.attempts) if not a.failed),
                tuple(r.site for r in results if r.status is None),
                judgement.pending,
                tuple(
                    a.site
                    for a in outcome.attempts
                    if isinstance(a.error, SiteUnreachable) and not a.error.connecting
                ),
            )
            recorded = await hooks.record(finished)
        extra = dict(recorded.headers)
        if judgement.verdict is Verdict.FAILED:
            return self._failure(call, results, "&", extra, recorded.note)
        if judgement.verdict is Verdict.MISSED:
            answered = [r for r in results if r.status is not None]
            response = self._failure(call, answered, "&", extra, recorded.note)
            response.headers[SITES_HEADER] = sites_header(results)
            return response
        ok_replies = [r for r in replies if r.site in ok_sites]
        # Merging parses every answer: off the event loop, so other calls go on meanwhile.
        merged, out_body = await asyncio.to_thread(
            self._merge, [r for r in results if not r.failed], ok_replies, hooks
        )
        headers = merged.headers
        pending = set(judgement.pending)
        headers[SITES_HEADER] = sites_header(results, pending=pending)
        if pending:
            headers[PENDING_HEADER] = ", ".join(judgement.pending)
        if missing:
            headers[PARTIAL_HEADER] = partial_header(missing)
        headers.update(extra)
        headers.setdefault(REQUEST_ID_HEADER, call.request_id)
        return web.Response(status=merged.status, body=out_body, headers=headers)

    def _merge(
        self, results: list[SiteResult], replies: list[BranchReply], hooks: CallHooks | None
    ) -> tuple[Merged, bytes]:
        merged = merge_results(results, self.config.limits.max_merge_items)
        body = hooks.collapse(merged.body, replies) if hooks is not None else merged.body
        return merged, body

    async def _branch_bodies(
        self, call: Call, plan: Plan, body: bytes | None
    ) -> tuple[Callable[[str], AsyncIterable[bytes] | None], Callable[[], Any]]:
        """Per-site request bodies of an ``&`` whose body was not read whole, and a closer."""

        async def nothing() -> None:
            return None

        if body is not None or not call.request.has_body:
            return (lambda site: None), nothing
        if isinstance(plan.expr, And) and all(isinstance(o, SiteRef) for o in plan.expr.operands):
            sites = list(dict.fromkeys(plan.sites))
            tee = BodyTee(self._body(call) or _nothing(), len(sites))
            readers = {site: tee.reader(i) for i, site in enumerate(sites)}
            return readers.get, tee.aclose
        # a nested |: a branch may never be tried, so spool first, then replay
        spool = await self.spools.open(call, plan)
        try:
            async for _ in spool.replay():
                pass
        except BaseException:
            self._unspool(spool)
            raise

        async def close() -> None:
            self._unspool(spool)

        return (lambda site: spool.replay()), close

    # -- shared -----------------------------------------------------------------------------

    async def _exchange(
        self,
        call: Call,
        plan: Plan,
        branch: BranchRequest,
        payload: AsyncIterable[bytes] | None,
        hooks: CallHooks | None,
        budget: ReadBudget | None = None,
    ) -> BranchReply:
        """Send ``branch`` and read its answer whole; the local one through the hooks."""
        limit = self.config.limits.max_merge_bytes

        async def send() -> BranchReply:
            response = await self._send(call, plan, branch, payload)
            data = await self._read(
                branch.site, response, limit, budget, give_up=call.gives_up_on_open
            )
            from_peer = branch.site != self.config.site
            headers = answer_headers(response.headers, from_peer=from_peer)
            return BranchReply(branch.site, response.status, dict(headers), data)

        if hooks is not None and branch.site == self.config.site:
            return await hooks.apply_local(branch, send)
        return await send()

    async def _send(
        self,
        call: Call,
        plan: Plan,
        branch: BranchRequest,
        payload: AsyncIterable[bytes] | None,
    ) -> SiteAnswer:
        """``sender.send``, noted in ``call.branches`` for the observers (the call's route)."""
        site = branch.site
        peers = self.sender.peers
        if site == self.config.site:
            breaker = "local"
        else:
            breaker = peers.breaker(site).state if site in peers else "unknown"
        trace = BranchTrace(site, time.monotonic(), breaker)
        call.branches.append(trace)
        try:
            response = await self.sender.send(call, plan, branch, payload)
        except SiteUnreachable as exc:
            trace.done(None, exc.reason)
            raise
        except asyncio.CancelledError:
            trace.done(None, "cancelled")  # e.g. a hedged read another site answered first
            raise
        except Exception as exc:
            trace.done(None, type(exc).__name__)
            raise
        trace.done(response.status)
        if trace.seconds is not None and response.status < 500:
            self.latencies.observe(site, trace.seconds, now=self.clock())
        return response

    async def _read(
        self,
        site: str,
        response: SiteAnswer,
        limit: int,
        budget: ReadBudget | None = None,
        give_up: bool = True,
    ) -> bytes:
        """A whole answer; a peer's read gives up as soon as its breaker opens (``give_up``)."""
        reading = read_body(response, site, limit, budget)
        if site == self.config.site:
            return await reading
        try:
            return await (self.sender.watch.unless_opened(site, reading) if give_up else reading)
        except SiteUnreachable as exc:
            self.sender.peer_failed(site, exc)
            raise

    async def _whole_body(self, call: Call, plan: Plan) -> bytes | None:
        request = call.request
        if not (self.extensions.handles(WantsBody) and request.has_body):
            return None
        if not (_small_json(request) or _kept_for_queue(call, plan)):
            return None
        if not any(self.extensions.each(WantsBody(call, plan))):
            return None
        return await request.read(self.config.limits.client_idle_timeout)

    def _body(self, call: Call) -> AsyncIterable[bytes] | None:
        return call.body_stream(self.config.limits.client_idle_timeout)

    def _unspool(self, spool: ReplayableBody) -> None:
        spool.close()  # gives its place and bytes back to the spool budget

    def _payload(self, call: Call, branch: BranchRequest) -> AsyncIterable[bytes] | None:
        if branch.body is not None:
            return once(branch.body)
        return self._body(call)

    async def _stream_back(
        self,
        call: Call,
        client: ClientLink,
        response: SiteAnswer,
        site: str,
        extra: dict[str, str],
        body: bytes | None = None,
    ) -> web.StreamResponse:
        return await stream_back(
            call,
            client,
            response,
            site,
            extra,
            tokens=self.sender.tokens if self.delegation.localises_catalog(call, site) else None,
            body=body,
            from_peer=site != self.config.site,
        )

    async def _results(
        self, attempts: Sequence[Attempt[Any]], *, read_failed: bool
    ) -> list[SiteResult]:
        """One :class:`SiteResult` per attempt (a failed ``|`` attempt's error body read)."""
        results = []
        for attempt in attempts:
            if attempt.error is not None:
                reason = getattr(attempt.error, "reason", None) or str(attempt.error)
                results.append(SiteResult(attempt.site, None, error=reason, failed=True))
                continue
            if isinstance(attempt.result, BranchReply):
                reply = attempt.result
                status, headers, body = reply.status, reply.headers, reply.body
            else:
                opened = attempt.result
                assert isinstance(opened, _Open)
                from_peer = attempt.site != self.config.site
                status = opened.response.status
                headers = dict(answer_headers(opened.response.headers, from_peer=from_peer))
                body = opened.body or b""
                if read_failed and attempt.failed and opened.body is None:
                    try:
                        body = await read_body(opened.response, attempt.site, ERROR_BODY_LIMIT)
                    except (SiteUnreachable, AnswerTooLarge):  # its reason: the status
                        body = b""
                if attempt.failed:  # its connection goes back (or is closed if unread)
                    opened.response.release()
            results.append(
                SiteResult(attempt.site, status, body, headers, failed=bool(attempt.failed))
            )
        return results

    def _failure(
        self,
        call: Call,
        results: list[SiteResult],
        operator: str,
        extra: dict[str, str] | None = None,
        note: str = "",
    ) -> web.Response:
        merged = failure_response(results, call.service, operator)
        body = json.loads(merged.body)
        if note:
            body["error"]["message"] += f"; {note}"
        response = json_error(body, merged.status, call.request_id)
        response.headers[SITES_HEADER] = merged.headers[SITES_HEADER]
        response.headers.update(extra or {})
        return response


class _Open:
    """A ``|`` attempt's answer: headers always, the body when it was small enough to read."""

    __slots__ = ("body", "response", "site")

    def __init__(self, site: str, response: SiteAnswer) -> None:
        self.site = site
        self.response = response
        self.body: bytes | None = None


def _raise_call_failure(attempts: Sequence[Attempt[Any]]) -> None:
    """A branch failed because of the call itself (the client's body broke off, the answers
    are too large to merge), not because of its site: the call fails as a whole."""
    for attempt in attempts:
        if isinstance(attempt.error, ClientBodyFailed | AnswerTooLarge):
            raise attempt.error


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # an empty async generator


def _branch(hooks: CallHooks | None, site: str, path: str, body: bytes | None) -> BranchRequest:
    request = BranchRequest(site, path, body)
    return hooks.branch(request) if hooks is not None else request


def _answered(attempts: Sequence[Attempt[BranchReply]]) -> list[tuple[BranchReply, Attempt[Any]]]:
    return [(a.result, a) for a in attempts if a.error is None and a.result is not None]


def _kept_for_queue(call: Call, plan: Plan) -> bool:
    """An eventual ``&`` write whose body may be queued for a cut site: read whole (any type, at
    most WHOLE_BODY) so the queue keeps the exact bytes sent; larger ones are refused (411/413)."""
    length = call.request.content_length
    eventual = plan.merges and call.is_write and call.mode == "eventual"
    return eventual and length is not None and length <= WHOLE_BODY


def _small_json(request: ClientRequest) -> bool:
    length = request.content_length
    content_type = request.headers.get("Content-Type", "").lower()
    return (
        length is not None and length <= WHOLE_BODY and ("json" in content_type or not content_type)
    )
