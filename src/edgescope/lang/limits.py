"""Size limits on scope text, checked by a linear pre-scan before the parser sees the text.

Scopes arrive in HTTP headers from untrusted clients, so :func:`prescan` rejects, in
linear time and with the exact position, anything over :class:`Limits` or containing
control characters (CR/LF would allow header injection). The parser
(:mod:`edgescope.lang.parse`) then only ever sees short, flat-enough, printable text.

    >>> prescan("{nova: ((Paris))}", Limits(max_depth=2))
    Traceback (most recent call last):
    ...
    edgescope.errors.ScopeLimitError: nesting is deeper than 2 levels at column 9
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edgescope.errors import ScopeLimitError, ScopeSyntaxError


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on a scope. The defaults fit any sane scope and a fan-out to 1000 sites."""

    max_length: int = 16384
    """Characters in the whole text (text or JSON form)."""
    max_depth: int = 32
    """Nesting of brackets of any kind, ``( [ {``, the scope's own braces included."""
    max_sites: int = 1024
    """Site references in the whole scope, all services together."""

    def __post_init__(self) -> None:
        for name in ("max_length", "max_depth", "max_sites"):
            if getattr(self, name) < 1:
                raise ValueError(f"Limits.{name} must be at least 1")


DEFAULT_LIMITS = Limits()

# C0 and C1 controls except TAB, DEL, and the Unicode line/paragraph separators.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_BRACKETS = re.compile(r'[\[({})\]"\\]')

MSG_TOO_LONG = "the scope is {length} characters long; the limit is {limit}"
MSG_CONTROL = "control character {code} is not allowed in a scope"
MSG_TOO_DEEP = "nesting is deeper than {limit} levels"


def prescan(text: str, limits: Limits) -> None:
    """Raise a positioned ScopeError if ``text`` is too long, has control chars or is too deep."""
    if len(text) > limits.max_length:
        message = MSG_TOO_LONG.format(length=len(text), limit=limits.max_length)
        # Keep a bounded source: the caret context never needs more than the cut point.
        raise ScopeLimitError(message, text[: limits.max_length + 1], limits.max_length)
    control = _CONTROL.search(text)
    if control is not None:
        code = f"U+{ord(control.group()):04X}"
        raise ScopeSyntaxError(MSG_CONTROL.format(code=code), text, control.start())
    depth = 0
    in_string = False
    escaped_at = -2
    for match in _BRACKETS.finditer(text):
        char, pos = match.group(), match.start()
        if in_string:
            if char == "\\" and escaped_at != pos - 1:
                escaped_at = pos
            elif char == '"' and escaped_at != pos - 1:
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "([{":
            depth += 1
            if depth > limits.max_depth:
                raise ScopeLimitError(MSG_TOO_DEEP.format(limit=limits.max_depth), text, pos)
        elif char in ")]}":
            depth = max(0, depth - 1)
