"""The exceptions edgescope raises, in one hierarchy.

    EdgescopeError
    ├── ScopeError (also ValueError)    a scope text or AST is wrong; carries source and span
    │   ├── ScopeSyntaxError            the text does not parse
    │   ├── ScopeLimitError             the text is over a size, depth or width limit
    │   └── ScopeCheckError             it parses, but a static check against a catalog fails
    ├── ConfigError (also ValueError)   a configuration file is invalid
    ├── SiteUnreachable                 a peer site cannot be reached (refused, timeout,
    │                                   breaker open)
    ├── ClientBodyFailed                the client's request body broke off or stalled
    └── AnswerTooLarge                  answers over what the proxy reads whole or merges

Third-party exceptions are mapped onto these at one boundary each (the parser, the
upstream client), so callers only ever handle edgescope's own types.
"""

from __future__ import annotations


class EdgescopeError(Exception):
    """Root of every error edgescope raises on purpose."""


class ScopeError(EdgescopeError, ValueError):
    """A scope is invalid. Positions are 0-based offsets into ``source``.

    ``str(err)`` is one line, e.g. ``expected '&', '|' or '}' at column 14``;
    :meth:`context` gives the source line and a caret under the offending character.
    An error raised without a source (a check with no position) has neither; one raised
    with a source always has both, even when that source is the empty text.
    """

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
        """It failed before a connection existed (refused, no route, connect timeout)."""


class ClientBodyFailed(EdgescopeError):
    """The client's request body broke off or stalled: the client's failure, not a site's."""


class BodyTooLarge(ClientBodyFailed):
    """A request body the proxy must keep to resend (``|``) is over its spool limit."""


class AnswerTooLarge(EdgescopeError):
    """A site's answer (or all the answers of an ``&`` together) is over what the proxy reads
    whole: the call's failure, not the site's."""


def _printable(ch: str) -> str:
    """Show control characters as one visible character, so the caret stays aligned."""
    if ch == "\t":
        return " "
    if ord(ch) < 32 or ord(ch) == 127:
        return "\N{REPLACEMENT CHARACTER}"
    return ch
