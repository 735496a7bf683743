"""How an extension takes part in the proxy: the core owns the flow, extensions answer it.

The dispatcher owns a call's journey (plan, branches, fallbacks, merge, answer). An
extension (``edgescope.replicas`` is one) is handed to ``SiteProxy(config, extensions=...)``
and never reaches into the dispatcher: it mounts its own routes under ``/edgescope/``, is
started and stopped with the proxy, and joins each planned call it cares about through
:meth:`Extension.join`, which returns :class:`CallHooks` for that call:

* :meth:`CallHooks.branch` -- rewrite the request of the branch to one site (translate ids,
  add internal markers);
* :meth:`CallHooks.apply_local` -- decide the local branch's outcome (e.g. apply a write once
  and only if it wins last-writer-wins), given the function that sends it;
* :meth:`CallHooks.record` -- see what the call did (:class:`Finished`) and record it (or
  undo it), adding response headers and a note to a failure's message (:class:`Recorded`);
* :meth:`CallHooks.collapse` -- rewrite a merged ``&`` answer, given every branch's answer.

Beyond its routes, start and stop, an extension implements only the **events** it wants
(mitmproxy's addon events): each is a small frozen dataclass (:class:`WantsBody`,
:class:`Join`, :class:`Observe`, :class:`SiteCall`, :class:`BindStatus`, :class:`Bounds`,
:class:`Closing`)
whose ``name`` is the method called with its fields. An extension lists the events it
implements in ``events``; :class:`ExtensionSet` looks the methods up by name when the proxy
is built, and an unknown event name, a listed event without its method, or a method of an
event that is not listed is an :class:`~edgescope.errors.ExtensionError` then, never a
silent no-op. :class:`Observe` sees every call once it is answered (its route in
``Call.branches``, its status and duration), :class:`SiteCall` every call an extension
makes itself through :class:`ProxyServices`, and :class:`BindStatus` hands over the proxy's
state (the ``/edgescope/status`` document): what the console and tracing need.

What the proxy offers in return is :class:`ProxyServices`: a one-site call on a client's
behalf (:meth:`~ProxyServices.call_site`), the roles of a client's token, signed calls to
peer proxies and the check of a peer's signature, so an extension needs no key and no
connection pool.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry

from edgescope.errors import ExtensionError
from edgescope.proxy.call import BranchReply, BranchRequest, BranchTrace, Call
from edgescope.proxy.config import PeerConfig
from edgescope.proxy.outcome import Verdict
from edgescope.proxy.protocol import HopMarker
from edgescope.proxy.route import Plan

log = logging.getLogger("edgescope.proxy")
SendBranch = Callable[[], Awaitable[BranchReply]]


@dataclass(frozen=True, slots=True)
class Finished:
    """What one planned call did, as :meth:`CallHooks.record` sees it."""

    verdict: Verdict
    replies: tuple[BranchReply, ...]
    """Every answer received, in scope order (whole bodies only when replies were read)."""
    succeeded: tuple[BranchReply, ...]
    """The answers that count as success (their effects happened)."""
    unreachable: tuple[str, ...]
    pending: tuple[str, ...] = ()
    """Members a degraded ``&`` write is to be queued for (eventual mode)."""
    in_doubt: tuple[str, ...] = ()
    """Unreachable sites the request may have reached (no answer once sent: it may apply)."""


@dataclass(frozen=True, slots=True)
class Recorded:
    """What :meth:`CallHooks.record` adds to the answer."""

    headers: Mapping[str, str] = field(default_factory=dict)
    note: str = ""
    """Appended to the message of a failed call (e.g. what was undone where)."""


class CallHooks(Protocol):
    """One extension's part in one call."""

    @property
    def reads_replies(self) -> bool:
        """Whether branch answers must be read whole (then :meth:`apply_local` is used)."""

    @property
    def queues_writes(self) -> bool:
        """Whether :meth:`record` can queue a write for an unreachable member."""

    def branch(self, request: BranchRequest) -> BranchRequest: ...

    async def apply_local(self, request: BranchRequest, send: SendBranch) -> BranchReply: ...

    async def record(self, finished: Finished) -> Recorded: ...

    def collapse(self, body: bytes, replies: Sequence[BranchReply]) -> bytes:
        """The merged answer of an ``&`` (``body``), given every branch's answer."""


class ProxyServices(Protocol):
    """What the proxy does for its extensions."""

    @property
    def site(self) -> str: ...

    def is_peer(self, site: str) -> bool: ...

    async def call_site(
        self,
        site: str,
        service: str,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        scope: str | None,
        body: bytes | None = None,
    ) -> BranchReply:
        """A one-site call of ``service`` at ``site`` (this one: its backend; a peer: a
        signed hop), with ``scope`` in every carrier of ``headers``, on behalf of whoever
        the token in ``headers`` is; its answer read whole. Raises SiteUnreachable."""

    def learn_peer(self, peer: PeerConfig) -> None:
        """Add (or update) a peer this proxy may route to (a static one is kept as is)."""

    def forget_peer(self, name: str) -> None:
        """Forget a peer learnt earlier."""

    async def fetch_json(
        self,
        url: str,
        payload: Any,
        *,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        loads: Callable[[bytes], Any] = ...,
    ) -> Any:
        """POST ``payload`` (JSON, or its bytes) to ``url`` with this proxy's TLS identity
        and ``headers`` (e.g. a hop marker the caller signed), and return the answer decoded
        by ``loads`` (default ``json.loads``); raises SiteUnreachable."""

    async def token_roles(self, token: str) -> frozenset[str]:
        """The roles ``token`` holds, as this site's Keystone validates it (none when it is
        not valid here). Raises SiteUnreachable when it cannot be asked."""

    async def send_to_peer(
        self,
        site: str,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float | None = None,
    ) -> BranchReply:
        """A signed call to ``site``'s proxy at ``path`` (a reserved path, or
        ``/edgescope/svc/<service>/...`` to be served there); raises SiteUnreachable."""

    def verify_peer(
        self,
        request: web.Request,
        *,
        destination: str | None = None,
        newcomer: PeerConfig | None = None,
    ) -> HopMarker:
        """The marker of the peer that signed ``request``, once this site's trust policy
        lets that peer make it; raises ForgedHop (NotTrusted) when none did (may not). Its
        ``content_digest`` binds a body sent whole: check it after reading the body.
        ``destination``: what the request was signed for instead of this site's name;
        ``newcomer``: a site not known yet whose key an extension admitted (a learned site)."""

    @property
    def metrics_registry(self) -> CollectorRegistry | None:
        """The proxy's metrics registry (``/metrics``), where an extension adds its own."""


class Extension(Protocol):
    """A part of the proxy that is optional and lives above it (``SiteProxy(extensions=)``)."""

    name: str

    @property
    def events(self) -> Sequence[str]:
        """The names of the events it implements (each a method of that name): :data:`EVENTS`."""

    def routes(self) -> Sequence[web.RouteDef]:
        """Routes under ``/edgescope/`` mounted on the main listener before the catch-all."""

    async def start(self, proxy: ProxyServices) -> None: ...

    async def stop(self) -> None: ...


StatusSource = Callable[[], dict[str, Any]]
"""The proxy's ``/edgescope/status`` document (peers, breakers, RTTs, services), made now."""


# -- events: what the proxy tells the extensions, looked up by name ------------------------


@dataclass(frozen=True, slots=True)
class WantsBody:
    """Before :class:`Join`: answer whether to read a small JSON request body whole."""

    name: ClassVar[str] = "wants_body"
    call: Call
    plan: Plan


@dataclass(frozen=True, slots=True)
class Join:
    """A planned call: answer this extension's :class:`CallHooks` for it, or None."""

    name: ClassVar[str] = "join"
    call: Call
    plan: Plan
    body: bytes | None


@dataclass(frozen=True, slots=True)
class Observe:
    """``call`` was answered with ``status`` after ``seconds``. Must be quick and never block
    (it runs on the proxy's loop, in every call's path); an exception is logged."""

    name: ClassVar[str] = "observe"
    call: Call
    status: int
    seconds: float


@dataclass(frozen=True, slots=True)
class SiteCall:
    """An extension's own call to a site ended (``origin``: ``call_site``, ``send_to_peer``
    or ``fetch_json`` of :class:`ProxyServices`): the same :class:`~call.BranchTrace` a
    call's branch gets (site, breaker state when sent, status or failure, seconds). Like
    :class:`Observe`: quick, never blocking; an exception is logged."""

    name: ClassVar[str] = "site_call"
    origin: str
    method: str
    path: str
    """Without its query."""
    trace: BranchTrace


@dataclass(frozen=True, slots=True)
class BindStatus:
    """Once, before the extensions start: how to read the proxy's state."""

    name: ClassVar[str] = "bind_status"
    status: StatusSource


@dataclass(frozen=True, slots=True)
class Bounds:
    """Once, after the extensions start: answer the extension's queues, caches and maps as
    :class:`~edgescope.proxy.metrics.Bound` s, each at ``/metrics`` as
    ``edgescope_bound_{size,limit,refused_total}{bound=name}`` (docs/security.md, "Limits")."""

    name: ClassVar[str] = "bounds"


@dataclass(frozen=True, slots=True)
class Closing:
    """The proxy is stopping: end long-lived answers (event streams) now, not after the
    listeners' grace period."""

    name: ClassVar[str] = "closing"


Event = WantsBody | Join | Observe | SiteCall | BindStatus | Bounds | Closing
EVENTS: Mapping[str, type[Event]] = {
    e.name: e for e in (WantsBody, Join, Observe, SiteCall, BindStatus, Bounds, Closing)
}
"""Every event, by the name of the method that handles it."""
_ARGS = {e: tuple(f.name for f in fields(e)) for e in EVENTS.values()}


class ExtensionSet:
    """The proxy's extensions, and each event's handlers, looked up by name once (at load).

    >>> ExtensionSet([]).handles(Observe)
    False
    """

    def __init__(self, extensions: Sequence[Extension]) -> None:
        self.all = tuple(extensions)
        found: dict[str, list[tuple[Extension, Callable[..., Any]]]] = {n: [] for n in EVENTS}
        for extension in self.all:
            for name, handler in _handlers(extension):
                found[name].append((extension, handler))
        self._handlers = {name: tuple(pairs) for name, pairs in found.items()}

    def __bool__(self) -> bool:
        return bool(self.all)

    def __iter__(self) -> Iterator[Extension]:
        return iter(self.all)

    def handles(self, event: type[Event]) -> bool:
        """Whether any extension implements ``event``."""
        return bool(self._handlers[event.name])

    def handlers(self, event: type[Event]) -> tuple[tuple[Extension, Callable[..., Any]], ...]:
        """(extension, method) of every extension that implements ``event``, in order."""
        return self._handlers[event.name]

    def site_call(self, origin: str, method: str, path: str, trace: BranchTrace) -> None:
        """Tell every handler of :class:`SiteCall` (the sender's ``own_calls``); a handler's
        exception is logged, never the call's failure."""
        for extension, handler in self._handlers[SiteCall.name]:
            try:
                handler(origin, method, path, trace)
            except Exception:
                log.exception("site_call of extension %s failed", type(extension).__name__)

    def each(self, event: Event) -> Iterator[Any]:
        """Call every handler of ``event`` with its fields, in extension order, lazily (so
        ``any(extensions.each(...))`` stops at the first yes)."""
        args = [getattr(event, name) for name in _ARGS[type(event)]]
        for _, handler in self._handlers[event.name]:
            yield handler(*args)


def _handlers(extension: Extension) -> list[tuple[str, Callable[..., Any]]]:
    """The event handlers ``extension`` lists, checked; raises ExtensionError."""
    label = getattr(extension, "name", type(extension).__name__)
    listed = list(getattr(extension, "events", ()))
    known = ", ".join(sorted(EVENTS))
    handlers = []
    for name in listed:
        if name not in EVENTS:
            raise ExtensionError(
                f"extension {label!r}: unknown event {name!r}; known events: {known}"
            )
        handler = getattr(extension, name, None)
        if not callable(handler):
            raise ExtensionError(f"extension {label!r} lists event {name!r} but has no {name}()")
        handlers.append((name, handler))
    for name in sorted(EVENTS.keys() - set(listed)):
        if callable(getattr(extension, name, None)):
            raise ExtensionError(
                f"extension {label!r} has {name}() but does not list {name!r} in its events"
            )
    return handlers


class JoinedHooks:
    """Several extensions' hooks for one call, composed in extension order."""

    def __init__(self, parts: Sequence[CallHooks]) -> None:
        self.parts = tuple(parts)

    @property
    def reads_replies(self) -> bool:
        return any(p.reads_replies for p in self.parts)

    @property
    def queues_writes(self) -> bool:
        return any(p.queues_writes for p in self.parts)

    def branch(self, request: BranchRequest) -> BranchRequest:
        for part in self.parts:
            request = part.branch(request)
        return request

    async def apply_local(self, request: BranchRequest, send: SendBranch) -> BranchReply:
        for part in reversed(self.parts):
            send = _wrapped(part, request, send)
        return await send()

    async def record(self, finished: Finished) -> Recorded:
        headers: dict[str, str] = {}
        notes = []
        for part in self.parts:
            recorded = await part.record(finished)
            headers.update(recorded.headers)
            notes.append(recorded.note)
        return Recorded(headers, " ".join(n for n in notes if n))

    def collapse(self, body: bytes, replies: Sequence[BranchReply]) -> bytes:
        for part in self.parts:
            body = part.collapse(body, replies)
        return body


def join_hooks(
    extensions: ExtensionSet, call: Call, plan: Plan, body: bytes | None
) -> CallHooks | None:
    """The hooks of every extension that joins ``call`` (None when none does)."""
    parts = [h for h in extensions.each(Join(call, plan, body)) if h is not None]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else JoinedHooks(parts)


def _wrapped(part: CallHooks, request: BranchRequest, send: SendBranch) -> SendBranch:
    async def run() -> BranchReply:
        return await part.apply_local(request, send)

    return run
