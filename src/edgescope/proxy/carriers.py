"""Scope carriers on HTTP: read, strip and rewrite them. Pure functions over header mappings.

Neighbours: ``server.py`` calls :func:`read_scope_text` on every request and
:func:`rewrite_carriers` on every branch; ``route.py`` decides; scope-lang parses the text.

Precedence (first present wins):

1. ``X-Scope: {nova: Paris, glance: Corte}``
2. token piggyback ``X-Auth-Token: <token>~scope~<base64url(canonical text), no padding>``,
   then the same on ``X-Subject-Token``;
3. W3C ``baggage: scope=<percent-encoded canonical text>``;
4. correlation: a scope remembered for ``X-OpenStack-Request-ID: req-<uuid>``. The ids the
   proxy remembers are ones it minted (:func:`new_correlation_id`): UUID version 8, which
   OpenStack never mints (its ids are version 4), so a site's HAProxy can send every call
   that may carry a remembered scope to edgescope (``CORRELATION_ID_REGEX``);
5. a *handle*: the same remembered id, as 32 hex digits (:func:`handle_of`), at the end of
   a header the site's config declares (:class:`HandleCarrier`), for applications that
   forward an id of their own on their internal calls rather than OpenStack's request id.
   Generic: the proxy knows only "a handle may end this header's value; calls to these
   services get one in that header". Swift, for one, is ``read = "X-Trans-Id"``,
   ``write = "X-Trans-Id-Extra"``: its proxy-server appends that header's value (up to 32
   characters) to the transaction id it sends on every call to its backends.

``X-Service-Token`` (the calling service's own token, which nova adds to its image and
network calls) is no carrier, and never leaves its site (the sender drops it on a hop).

    >>> attach_piggyback("gAAAA", "{image: Corte}")
    'gAAAA~scope~e2ltYWdlOiBDb3J0ZX0'
    >>> split_piggyback('gAAAA~scope~e2ltYWdlOiBDb3J0ZX0')
    ('gAAAA', '{image: Corte}')
    >>> rid = "req-0b5c1e52-8d4f-8a1b-9c3d-4e5f60718293"
    >>> request_id_of_handle("tx4f2a9c-0063a1b2c3-" + handle_of(rid)) == rid
    True
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote_plus

from edgescope.errors import EdgescopeError, ErrorCode, ScopeLimitError, ScopeSyntaxError

SCOPE_HEADER = "X-Scope"
MODE_HEADER = "X-Scope-Mode"
"""``strict`` (the default), ``eventual`` (what an ``&`` write does when a member is cut) or
``partial`` (an ``&`` read answers from the sites that could answer)."""
AUTH_TOKEN_HEADER = "X-Auth-Token"
TOKEN_HEADERS = (AUTH_TOKEN_HEADER, "X-Subject-Token")
SERVICE_TOKEN_HEADER = "X-Service-Token"
BAGGAGE_HEADER = "baggage"
REQUEST_ID_HEADER = "X-OpenStack-Request-ID"
PIGGYBACK_MARK = "~scope~"
BAGGAGE_KEY = "scope"
OWS = " \t"
"""HTTP's optional whitespace (RFC 9110): all a baggage key is trimmed of."""
_REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
CORRELATION_ID_REGEX = "^req-[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
"""The form of the ids of :func:`new_correlation_id` (a UUID of version 8), as a regex."""
_CORRELATION_ID = re.compile(CORRELATION_ID_REGEX)
log = logging.getLogger(__name__)


class ScopeHeaderTooLarge(ScopeLimitError):
    """A scope carrier is over the proxy's size limit (-> 431)."""

    code = ErrorCode.SCOPE_TOO_LARGE


class ScopeForgotten(EdgescopeError):
    """A call carries an id this proxy issued, whose scope it no longer remembers (-> 503):
    routing it here, as if it had no scope, would be a silently wrong route."""

    code = ErrorCode.SCOPE_FORGOTTEN


REMEMBERED_CARRIERS = frozenset({"request-id", "handle"})
"""Carriers that bring a scope this proxy remembered (not one the caller wrote)."""
_HANDLE = re.compile(r"(?:^|-)([0-9a-f]{32})$")


@dataclass(frozen=True, slots=True)
class FoundScope:
    """A scope text and its carrier: ``x-scope``, ``token``, ``baggage``, ``request-id`` or
    ``handle``."""

    text: str
    carrier: str
    request_id: str | None = None
    """For a handle: the remembered id it stands for (the call then goes on under it)."""


@dataclass(frozen=True, slots=True)
class HandleCarrier:
    """A header an application forwards on its own internal calls, declared in the site's
    config (``[[carriers]]``): a scope handle may end its value."""

    read: str
    """The header whose value may end with ``-<handle>`` (or be the handle)."""
    write: str | None = None
    """The header that calls to ``services`` get the handle in (None: read only)."""
    services: frozenset[str] = frozenset()
    """The service types whose backends get ``write`` (empty: every service)."""

    def writes_to(self, service: str) -> bool:
        return self.write is not None and (not self.services or service in self.services)


def handle_of(request_id: str) -> str:
    """The 32 hex digits of a remembered id (``req-<uuid>``): short enough for an
    application that bounds what it appends (Swift keeps 32 characters of
    ``X-Trans-Id-Extra``), and left alone by URL quoting."""
    return request_id.removeprefix("req-").replace("-", "")


def request_id_of_handle(value: str) -> str | None:
    """The remembered id whose handle ends ``value``, if it has the form of one."""
    found = _HANDLE.search(value)
    if found is None:
        return None
    request_id = f"req-{uuid.UUID(hex=found.group(1))}"
    return request_id if is_correlation_id(request_id) else None


def split_piggyback(value: str) -> tuple[str, str | None]:
    """``token~scope~b64`` -> (token, scope text); a plain token -> (token, None).

    Bad base64 raises :class:`ScopeSyntaxError` with a caret on the first bad character.
    """
    token, mark, encoded = value.partition(PIGGYBACK_MARK)
    if not mark:
        return value, None
    bad = _B64URL.match(encoded)
    end = bad.end() if bad else 0
    if end < len(encoded) or len(encoded) % 4 == 1:
        pos = end if end < len(encoded) else len(encoded) - 1
        raise ScopeSyntaxError(
            "invalid base64url in the token's scope piggyback "
            "(expected A-Z a-z 0-9 - _, no padding)",
            encoded,
            pos,
        )
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        return token, raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ScopeSyntaxError(
            "the token's scope piggyback is not base64url of UTF-8 text", encoded, 0, len(encoded)
        ) from exc


def attach_piggyback(token: str, scope_text: str) -> str:
    """The token with ``scope_text`` piggybacked (replacing any earlier piggyback)."""
    plain, _ = split_piggyback_lenient(token)
    encoded = base64.urlsafe_b64encode(scope_text.encode()).decode().rstrip("=")
    return f"{plain}{PIGGYBACK_MARK}{encoded}"


def split_piggyback_lenient(value: str) -> tuple[str, str]:
    """Token and raw encoded part, without decoding (for stripping)."""
    token, _, encoded = value.partition(PIGGYBACK_MARK)
    return token, encoded


def baggage_scope(header: str) -> str | None:
    """The percent-decoded ``scope`` member of a W3C baggage header, or None.

    Members are split at every comma (baggage has no quoting) and keys trimmed of HTTP's
    optional whitespace only (space, tab). A key that is ``scope`` only once other Unicode
    whitespace is trimmed (a no-break space before it, U+3000 before ``=``) is refused
    (:class:`ScopeSyntaxError`, 400) rather than read one way here and another by HAProxy's
    fast path (deploy/haproxy.py), which sends every baggage that mentions ``scope`` here.

    >>> baggage_scope("userid=alice, scope=%7Bimage%3A%20Corte%7D;p=1")
    '{image: Corte}'
    """
    for member in header.split(","):
        key, eq, rest = member.partition("=")
        if not eq:
            continue
        name = key.strip(OWS)
        if name == BAGGAGE_KEY:
            return unquote_plus(rest.split(";", 1)[0].strip(OWS), errors="strict")
        if key.strip() == BAGGAGE_KEY:
            raise ScopeSyntaxError(
                "baggage key 'scope' with whitespace other than spaces and tabs around it",
                header,
                header.find(member),
                header.find(member) + len(member),
            )
    return None


def set_baggage_scope(header: str | None, scope_text: str) -> str:
    """``header`` with its ``scope`` member replaced (or added) by ``scope_text``."""
    kept = [
        m
        for m in (header or "").split(",")
        if m.strip() and m.partition("=")[0].strip() != BAGGAGE_KEY
    ]
    return ",".join([*kept, f"{BAGGAGE_KEY}={quote(scope_text, safe='')}"])


def baggage_of(headers: Mapping[str, str]) -> str | None:
    """The request's baggage: several ``baggage`` header lines are one comma-separated list
    (RFC 9110, W3C baggage), so a ``scope`` in the second line is read like one in the first."""
    getall = getattr(headers, "getall", None)
    if getall is None:  # a plain dict holds one line per name
        return headers.get(BAGGAGE_HEADER)
    lines: list[str] = getall(BAGGAGE_HEADER, [])
    return ",".join(lines) if lines else None


def read_scope_text(
    headers: Mapping[str, str],
    max_bytes: int,
    remembered: Mapping[str, str] | None = None,
    handles: Sequence[HandleCarrier] = (),
) -> FoundScope | None:
    """Find the request's scope text by carrier precedence; enforce the size limit.

    Raises :class:`ScopeLimitError` (-> 431) when a carrier is over ``max_bytes`` and
    :class:`ScopeSyntaxError` (-> 400) for an undecodable piggyback or baggage value.
    """
    if (value := headers.get(SCOPE_HEADER)) is not None:
        return FoundScope(_within(value, max_bytes, SCOPE_HEADER), "x-scope")
    for name in TOKEN_HEADERS:
        token = headers.get(name)
        if token is not None and PIGGYBACK_MARK in token:
            _within(token.partition(PIGGYBACK_MARK)[2], max_bytes * 2, name)
            _, text = split_piggyback(token)
            if text is not None:
                return FoundScope(_within(text, max_bytes, name), "token")
    if (bag := baggage_of(headers)) is not None:
        _within(bag, max_bytes * 2, BAGGAGE_HEADER)
        try:
            text = baggage_scope(bag)
        except UnicodeDecodeError as exc:
            raise ScopeSyntaxError("baggage 'scope' is not percent-encoded UTF-8", bag, 0) from exc
        if text is not None:
            return FoundScope(_within(text, max_bytes, BAGGAGE_HEADER), "baggage")
    if remembered is None:
        return None
    request_id = headers.get(REQUEST_ID_HEADER)
    if request_id and request_id in remembered:
        return FoundScope(remembered[request_id], "request-id")
    carried = [request_id] if request_id else []
    for carrier in handles:
        value = headers.get(carrier.read)
        handled = request_id_of_handle(value[-64:]) if value else None
        if handled is not None and handled in remembered:
            return FoundScope(remembered[handled], "handle", handled)
        carried += [handled] if handled else []
    if isinstance(remembered, ScopeMemory):
        for carried_id in carried:  # an id this proxy issued and forgot: no local route
            remembered.check_not_forgotten(carried_id)
    return None


def rewrite_carriers(
    headers: MutableMapping[str, str],
    scope_text: str | None,
    *,
    strip_tokens: bool = False,
    piggyback_plain: bool = True,
) -> None:
    """Make every carrier present in ``headers`` say ``scope_text`` (the branch's scope).

    ``X-Auth-Token`` gets the scope piggybacked (replacing any earlier one), whichever
    carrier brought it: a backend hands that token on unchanged when it validates it or calls
    a neighbour, so the scope follows with no help from the client. The exception is
    ``piggyback_plain=False``, for a scope found only by request-id correlation: the token on
    such a call is usually a *service's own* token (nova-scheduler -> placement), whose
    validation must stay at its own site, so a plain token stays plain. ``X-Subject-Token`` is
    rewritten only when it already has a piggyback. With ``strip_tokens`` the piggyback is
    removed from both (and from ``X-Service-Token``) instead, so an identity backend only
    ever sees real tokens.
    ``X-Scope`` is always set when there is a scope, since the next proxy reads it first.
    """
    if strip_tokens and SERVICE_TOKEN_HEADER in headers:
        headers[SERVICE_TOKEN_HEADER] = split_piggyback_lenient(headers[SERVICE_TOKEN_HEADER])[0]
    for name in TOKEN_HEADERS:
        token = headers.get(name)
        if token is None:
            continue
        plain, _ = split_piggyback_lenient(token)
        if strip_tokens or scope_text is None:
            headers[name] = plain
        elif (name == AUTH_TOKEN_HEADER and plain and piggyback_plain) or PIGGYBACK_MARK in token:
            headers[name] = attach_piggyback(plain, scope_text)
    if scope_text is None:
        return
    headers[SCOPE_HEADER] = scope_text
    if (bag := baggage_of(headers)) is not None:
        headers[BAGGAGE_HEADER] = set_baggage_scope(bag, scope_text)  # one header from now on


def is_request_id(value: str | None) -> bool:
    """Whether ``value`` has OpenStack's global request id form ``req-<uuid>``."""
    return bool(value and _REQUEST_ID.match(value))


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


def new_correlation_id() -> str:
    """A global request id the proxy remembers a scope for: ``req-<uuid>`` of version 8
    (RFC 9562's vendor-specific version, 122 random bits), which oslo accepts like any
    ``req-<uuid>`` and OpenStack's own version-4 ids never match.

    >>> is_correlation_id(new_correlation_id()), is_correlation_id(new_request_id())
    (True, False)
    """
    bits = int.from_bytes(secrets.token_bytes(16), "big")
    bits = (bits & ~(0xF << 76)) | (0x8 << 76)  # version 8
    bits = (bits & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122/9562 variant
    return _uuid_text(bits)


def is_correlation_id(value: str | None) -> bool:
    """Whether ``value`` is an id of :func:`new_correlation_id` (one a scope may be
    remembered for)."""
    return bool(value and _CORRELATION_ID.match(value))


def memory_owner(remote: str | None, peer: str | None, headers: Mapping[str, str]) -> str:
    """Whose share of the scope memory a call's entry counts against: its client address
    (or peer site) and its token, so clients behind one HAProxy address keep their shares
    apart. Only a digest of the token is kept.

    >>> memory_owner("10.0.0.1", None, {"X-Auth-Token": "t~scope~e30"}) == memory_owner(
    ...     "10.0.0.1", None, {"X-Auth-Token": "t"})
    True
    """
    token = split_piggyback_lenient(headers.get(AUTH_TOKEN_HEADER, ""))[0]
    digest = hashlib.blake2b(token.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
    return f"{f'peer:{peer}' if peer else remote or ''} {digest if token else '-'}"


class CorrelationIds:
    """Mints the ids a scope is remembered under, and tells them from any other id.

    An id is a version-8 UUID (:func:`new_correlation_id`'s form, which HAProxy tells from
    OpenStack's own ids) whose 122 free bits hold the minute it was issued (16 bits, so its
    age is known up to 45 days), a 42-bit random nonce and a 64-bit HMAC-SHA256 tag of both
    under ``key``. The proxy's key is derived from its site's signing key, so it stays the
    same across restarts (an id issued before one is still known as this proxy's) and no
    other party can make one.

    >>> ids = CorrelationIds(b"k" * 32)
    >>> ids.issued(ids.mint()), ids.issued(new_correlation_id())
    (True, False)
    """

    def __init__(self, key: bytes, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self._clock = clock

    def mint(self) -> str:
        nonce = (self._minute() << 42) | secrets.randbits(42)
        return _v8_id((nonce << 64) | self._tag(nonce))

    def issued(self, request_id: str) -> bool:
        """Whether ``request_id`` is one this proxy (this key) minted."""
        if not is_correlation_id(request_id):
            return False
        bits = _v8_bits(request_id)
        nonce, tag = bits >> 64, bits & ((1 << 64) - 1)
        return hmac.compare_digest(self._tag(nonce).to_bytes(8, "big"), tag.to_bytes(8, "big"))

    def age(self, request_id: str) -> float:
        """Seconds since an id of this proxy's was issued (to the minute, modulo 45 days)."""
        return float((self._minute() - (_v8_bits(request_id) >> 106)) % (1 << 16) * 60)

    def _minute(self) -> int:
        return int(self._clock() // 60) & 0xFFFF

    def _tag(self, nonce: int) -> int:
        # hmac.digest: OpenSSL's one-shot HMAC, the same bytes as hmac.new(...).digest()
        # without building an HMAC object in Python (docs/design.md, "Hot path")
        digest = hmac.digest(self._key, nonce.to_bytes(8, "big"), "sha256")
        return int.from_bytes(digest[:8], "big")


def _v8_id(bits: int) -> str:
    """A version-8, RFC 9562-variant UUID id carrying 122 ``bits``."""
    high, mid, low = bits >> 74, (bits >> 62) & 0xFFF, bits & ((1 << 62) - 1)
    value = (high << 80) | (0x8 << 76) | (mid << 64) | (0x2 << 62) | low
    return _uuid_text(value)


def _uuid_text(value: int) -> str:
    """``req-`` and the 128-bit ``value`` as ``str(uuid.UUID(int=value))`` spells it,
    without building the UUID object (once per scoped call)."""
    h = f"{value:032x}"
    return f"req-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _v8_bits(request_id: str) -> int:
    value = uuid.UUID(request_id.removeprefix("req-")).int
    high, mid, low = value >> 80, (value >> 64) & 0xFFF, value & ((1 << 62) - 1)
    return (high << 74) | (mid << 62) | low


class ScopeMemory(Mapping[str, str]):
    """Bounded LRU of request id -> scope text: carrier 4, correlation by global request id.

    Only ids the proxy made itself are remembered (the dispatcher gives a call a fresh id
    from :meth:`mint` before remembering its scope), so no client can plant a scope under an
    id another client's calls will carry. Each owner (a client address and token) keeps at
    most ``per_owner`` entries, so one client's flood evicts its own entries; when the whole
    memory is full, the owner holding the most entries loses its oldest. An entry may still
    be forgotten (many owners): a call that carries an id this proxy issued and forgot gets
    :class:`ScopeForgotten` (503), never a local route.
    """

    def __init__(
        self,
        capacity: int = 10_000,
        per_owner: int | None = None,
        ids: CorrelationIds | None = None,
        horizon: float = 3600.0,
    ) -> None:
        self._items: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._owned: dict[str, OrderedDict[str, None]] = {}
        self._by_size: dict[int, OrderedDict[str, None]] = {}
        """Owners by how many entries they hold: who loses one when the memory is full."""
        self._largest = 0
        self._capacity = capacity
        self._per_owner = per_owner or max(capacity // 16, min(capacity, 16))
        self.ids = ids if ids is not None else CorrelationIds(secrets.token_bytes(32))
        self.horizon = horizon
        """Seconds after its issue a forgotten id is still an error (then a late replay)."""
        self.evicted = 0
        """Entries forgotten to stay within the bounds (an owner's, or everybody's)."""
        self.late = 0
        """Calls with an id issued here before the horizon, its scope forgotten: local."""

    @property
    def capacity(self) -> int:
        return self._capacity

    def mint(self) -> str:
        """A new id of this proxy's to remember a scope under."""
        return self.ids.mint()

    def issued(self, request_id: str) -> bool:
        return self.ids.issued(request_id)

    def check_not_forgotten(self, request_id: str) -> None:
        """Raise :class:`ScopeForgotten` if this proxy issued ``request_id`` within the
        ``horizon`` and has no scope for it any more. An older id is a late replay (Swift's
        object-updater): it is served like an unscoped call, as it always was, and counted."""
        if request_id in self._items or not self.ids.issued(request_id):
            return
        age = self.ids.age(request_id)
        if age > self.horizon:
            self.late += 1
            log.info("request id %s: issued %.0f s ago, scope forgotten: local", request_id, age)
            return
        raise ScopeForgotten(
            f"this proxy issued request id {request_id} for a scoped call {age / 60:.0f} min "
            f"ago, but no longer remembers its scope (its bound is {self._capacity} entries, "
            f"{self.evicted} forgotten so far; or it restarted); the call is not routed "
            "without it. Retry the original call, or give the scope again (X-Scope)"
        )

    def remember(self, request_id: str, scope_text: str, owner: str = "") -> None:
        self._forget(request_id)
        self._items[request_id] = (scope_text, owner)
        owned = self._owned.setdefault(owner, OrderedDict())
        self._resize(owner, len(owned), len(owned) + 1)
        owned[request_id] = None
        while len(owned) > self._per_owner:
            self._forget(next(iter(owned)))
            self.evicted += 1
        while len(self._items) > self._capacity:
            largest = self._by_size[self._largest]
            self._forget(next(iter(self._owned[next(iter(largest))])))
            self.evicted += 1

    def _forget(self, request_id: str) -> None:
        found = self._items.pop(request_id, None)
        if found is None:
            return
        owner = found[1]
        owned = self._owned[owner]
        owned.pop(request_id, None)
        self._resize(owner, len(owned) + 1, len(owned))
        if not owned:
            del self._owned[owner]

    def _resize(self, owner: str, old: int, new: int) -> None:
        if old:
            bucket = self._by_size[old]
            del bucket[owner]
            if not bucket:
                del self._by_size[old]
        if new:
            self._by_size.setdefault(new, OrderedDict())[owner] = None
        if new > self._largest:
            self._largest = new
        elif old == self._largest and old not in self._by_size:
            self._largest = new if new else max(self._by_size, default=0)

    def __getitem__(self, request_id: str) -> str:
        return self._items[request_id][0]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)


def _within(value: str, max_bytes: int, carrier: str) -> str:
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise ScopeHeaderTooLarge(
            f"the scope in {carrier} is {size} bytes; the limit is {max_bytes}", "", 0
        )
    return value
