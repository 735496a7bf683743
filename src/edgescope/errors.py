"""The exceptions edgescope raises, in one hierarchy.

    EdgescopeError
    ├── ScopeError (also ValueError)    a scope text or AST is wrong; carries source and span
    │   ├── ScopeSyntaxError            the text does not parse
    │   ├── ScopeLimitError             the text is over a size, depth or width limit
    │   └── ScopeCheckError             it parses, but a static check against a catalog fails
    ├── ConfigError (also ValueError)   a configuration file is invalid
    ├── SiteUnreachable                 a peer site cannot be reached (refused, timeout,
    │                                   breaker open)
    ├── WriteInDoubt                    a ``|`` write's site gave no answer: not re-sent elsewhere
    ├── ClientBodyFailed                the client's request body broke off or stalled
    ├── AnswerTooLarge                  answers over what the proxy reads whole or merges
    ├── Refused                         a request refused on purpose, with its own status
    ├── ExtensionError                  an extension does not fit the proxy (checked at load)
    └── (the replica registry's own: ``RegistryUnavailable``, ``IdCollision``, ``QueueFull``,
         in ``replicas/registry.py``: what went wrong in the data, each with its code)

Third-party exceptions are mapped onto these at one boundary each (the parser, the
upstream client), so callers only ever handle edgescope's own types.

Each error that ends a call carries its answer: ``code`` (an :class:`ErrorCode`), or for
:class:`Refused` its own status and title. The proxy server turns an error into a response
in one place (``proxy/server.py`` ``_answer``); an exception that is none of these is a bug,
answered 500 and logged with its traceback.

    >>> BodyTooLarge("over 1 GiB").answer()
    (413, 'Request Body Too Large', 'over 1 GiB')
    >>> Refused(409, "set s1 is busy").answer()
    (409, 'Conflict', 'set s1 is busy')
"""

from __future__ import annotations

import enum
from typing import ClassVar


class ErrorCode(enum.Enum):
    """Every failure the proxy itself answers, with its HTTP status and title."""

    BAD_SCOPE = (400, "Bad Scope")
    BAD_REQUEST = (400, "Bad Request")
    FANOUT_TOO_WIDE = (400, "Fan-out Too Wide")
    HOP_FORBIDDEN = (403, "Forbidden Hop Marker")
    PROTOCOL_MISMATCH = (400, "Protocol Version Mismatch")
    UNKNOWN_SERVICE = (404, "Unknown Service")
    CLIENT_BODY = (408, "Request Body Incomplete")
    BODY_TOO_LARGE = (413, "Request Body Too Large")
    SCOPE_TOO_LARGE = (431, "Scope Header Too Large")
    INTERNAL_ERROR = (500, "Internal Proxy Error")
    BAD_ANSWER = (502, "Bad Answer From Site")
    SITE_UNREACHABLE = (503, "Site Unreachable")
    BUSY = (503, "Too Many Uploads")
    SCOPE_FORGOTTEN = (503, "Remembered Scope Forgotten")
    WRITE_IN_DOUBT = (504, "Write In Doubt")
    TOO_LARGE = (507, "Answer Too Large")
    LOOP_DETECTED = (508, "Loop Detected")
    REPLICA_ID_COLLISION = (409, "Replica Id Collision")
    REPLICA_DB_UNAVAILABLE = (503, "Replica Database Unavailable")
    REPLICA_QUEUE_FULL = (507, "Replica Queue Full")

    def http_status(self) -> int:
        return int(self.value[0])

    @property
    def title(self) -> str:
        return str(self.value[1])


class EdgescopeError(Exception):
    """Root of every error edgescope raises on purpose."""

    code: ClassVar[ErrorCode | None] = None
    """The proxy's answer when this error ends a call; None: it is not meant to end one."""

    def answer(self) -> tuple[int, str, str] | None:
        """(status, title, message) of the answer to a call this error ends, or None."""
        if self.code is None:
            return None
        return self.code.http_status(), self.code.title, str(self)


class ScopeError(EdgescopeError, ValueError):
    """A scope is invalid (-> 400). Positions are 0-based offsets into ``source``.

    ``str(err)`` is one line, e.g. ``expected '&', '|' or '}' at column 14``;
    :meth:`context` gives the source line and a caret under the offending character.
    An error raised without a source (a check with no position) has neither; one raised
    with a source always has both, even when that source is the empty text.
    """

    code = ErrorCode.BAD_SCOPE

    def __init__(
        self, message: str, source: str | None = None, pos: int = 0, end: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.positioned = source is not None
        self.source = source or ""
        self.pos = max(0, min(pos, len(self.source)))
        self.end = self.pos + 1 if end is None else max(end, self.pos + 1)

    @property
    def line(self) -> int:
        """1-based line of the error."""
        return self.source.count("\n", 0, self.pos) + 1

    @property
    def column(self) -> int:
        """1-based column of the error."""
        return self.pos - (self.source.rfind("\n", 0, self.pos) + 1) + 1

    def context(self, span: int = 40) -> str:
        """The offending source line (clipped to ``span`` chars each side) and a caret line."""
        start_of_line = self.source.rfind("\n", 0, self.pos) + 1
        end_of_line = self.source.find("\n", self.pos)
        if end_of_line == -1:
            end_of_line = len(self.source)
        lo = max(start_of_line, self.pos - span)
        hi = min(end_of_line, self.pos + span)
        text = "".join(_printable(ch) for ch in self.source[lo:hi])
        width = max(1, min(self.end, hi) - self.pos)
        return f"{text}\n{' ' * (self.pos - lo)}{'^' * width}"

    def render(self) -> str:
        """The full message for people: what is wrong, where, and the caret context."""
        where = f"column {self.column}"
        if "\n" in self.source:
            where = f"line {self.line}, {where}"
        if not self.positioned:
            return self.message
        return f"{self.message} (at {where})\n{self.context()}"

    def __str__(self) -> str:
        if not self.positioned:
            return self.message
        return f"{self.message} at column {self.column}"


class ScopeSyntaxError(ScopeError):
    """The scope text does not follow the grammar."""


class ScopeLimitError(ScopeError):
    """The scope text is over a documented limit (length, depth, sites)."""


class ScopeCheckError(ScopeError):
    """The scope parses but fails a static check (unknown site, bad collaboration, ...)."""


class ConfigError(EdgescopeError, ValueError):
    """A configuration file or value is invalid."""


CONNECT_TIMED_OUT = "timed out connecting"
"""The reason of a :class:`SiteUnreachable` whose connection was not made in time."""


class SiteUnreachable(EdgescopeError):
    """A site could not be reached: connection refused, timeout, or its breaker is open."""

    def __init__(self, site: str, reason: str, *, connecting: bool = False) -> None:
        super().__init__(f"site {site} is unreachable: {reason}")
        self.site = site
        self.reason = reason
        self.connecting = connecting
        """It failed before anything was sent: refused, no route, connect timeout, breaker
        open, not a peer, no free slot. Otherwise a write may have been applied there."""


class WriteInDoubt(EdgescopeError):
    """A ``|`` write was sent to a site that gave no answer (read timeout, reset): it may have
    been applied there, so it is not sent to the next site (a write is never applied twice)."""

    code = ErrorCode.WRITE_IN_DOUBT


class BadAnswer(SiteUnreachable):
    """A site answered what the proxy cannot pass on (a control character in a header):
    the site's failure, answered 502 when it ends the call."""


class ClientBodyFailed(EdgescopeError):
    """The client's request body broke off or stalled: the client's failure, not a site's."""

    code = ErrorCode.CLIENT_BODY


class BodyTooLarge(ClientBodyFailed):
    """A request body the proxy must keep to resend (``|``) is over its spool limit."""

    code = ErrorCode.BODY_TOO_LARGE


class AnswerTooLarge(EdgescopeError):
    """A site's answer (or all the answers of an ``&`` together) is over what the proxy reads
    whole: the call's failure, not the site's."""

    code = ErrorCode.TOO_LARGE


REFUSAL_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
}


class Refused(EdgescopeError):
    """A request refused on purpose: the answer is ``status`` with ``title`` and the message
    (the title defaults to the status's name). The one refusal type of the proxy, its
    extensions and their internal endpoints."""

    def __init__(self, status: int, message: str, *, title: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.title = title or REFUSAL_TITLES.get(status, "Refused")

    def answer(self) -> tuple[int, str, str]:
        return self.status, self.title, self.message


class ExtensionError(EdgescopeError, TypeError):
    """An extension does not fit the proxy: an unknown event name, a listed event without its
    method, or an event's method it does not list. Raised when the proxy is built."""


def _printable(ch: str) -> str:
    """Show control characters as one visible character, so the caret stays aligned."""
    if ch == "\t":
        return " "
    if ord(ch) < 32 or ord(ch) == 127:
        return "\N{REPLACEMENT CHARACTER}"
    return ch
