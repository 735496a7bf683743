"""What every measured call answered: 2xx answers counted apart from errors, and the first
error kept (its status and the start of its body), so a failed path says why.

    >>> tally = Tally()
    >>> tally.answer(200, b"{}"), tally.answer(403, b"'Paris' is not a peer of Corte")
    (True, False)
    >>> tally.incomplete()
    "1 of 2 calls failed, the first: 403 'Paris' is not a peer of Corte"

A figure measured over calls that did not all succeed is FAILED (``bench/__main__.py``
then exits non-zero and leaves docs/benchmarks.md alone); a verdict needs a complete run
(``bench/verdicts.py``). The helpers at the bottom read these marks back from the rows a
benchmark stores.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

BODY_CHARS = 200
"""How much of the first error's body a figure keeps."""
CALL_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
"""What a measured call may raise instead of answering: counted as an error with no status."""
TIMEOUT = aiohttp.ClientTimeout(total=60)
"""No measured call may hang the bench: after this it is an error."""


@dataclass(frozen=True)
class Failure:
    """The first error of a measured path."""

    status: int | None
    """The HTTP status; None when no answer came (refused, reset, timed out)."""
    body: str
    """The start of the answer's body, or the exception."""

    def __str__(self) -> str:
        if self.status is None:
            return f"no answer: {self.body}"
        return f"{self.status} {self.body}".rstrip()


def truncated(text: str, limit: int = BODY_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Tally:
    """2xx answers and errors of one measured path."""

    ok: int = 0
    errors: int = 0
    first_error: Failure | None = None

    @property
    def calls(self) -> int:
        return self.ok + self.errors

    def answer(self, status: int, body: bytes = b"") -> bool:
        """Count one answer; True when it is a 2xx."""
        if 200 <= status < 300:
            self.ok += 1
            return True
        self.errors += 1
        if self.first_error is None:
            self.first_error = Failure(status, truncated(body.decode(errors="replace")))
        return False

    def exception(self, exc: BaseException) -> None:
        """Count a call that got no answer."""
        self.errors += 1
        if self.first_error is None:
            self.first_error = Failure(None, truncated(f"{type(exc).__name__}: {exc}"))

    def add(self, other: Tally) -> None:
        self.ok += other.ok
        self.errors += other.errors
        self.first_error = self.first_error or other.first_error

    def incomplete(self) -> str | None:
        """None when every call answered 2xx (and there was at least one), else why not."""
        if self.errors:
            return f"{self.errors} of {self.calls} calls failed, the first: {self.first_error}"
        if not self.ok:
            return "no call was made"
        return None

    def as_json(self) -> dict[str, Any]:
        """The fields a stored row carries (see :func:`failed`)."""
        return {
            "ok": self.ok,
            "errors": self.errors,
            "first_error": None if self.first_error is None else str(self.first_error),
            "failed": self.incomplete(),
        }


def failed(row: Mapping[str, Any]) -> str | None:
    """Why a stored row's figure failed (its ``failed`` field), or None. A row that does not
    say (no ``failed`` field) is not known to be complete: it fails too."""
    if "failed" not in row:
        return "not known whether every call succeeded"
    why = row["failed"]
    return str(why) if why else None


def failures(figure: str, rows: Iterable[Mapping[str, Any]], label: str) -> list[str]:
    """``<figure>, <row label>: <why>`` for every failed row of a figure."""
    return [f"{figure}, {row[label]}: {why}" for row in rows if (why := failed(row))]


def first_failed(rows: Iterable[Mapping[str, Any] | None]) -> str | None:
    """Why the first of these rows failed (a missing row counts as not measured), or None."""
    for row in rows:
        if row is None:
            return "not measured"
        if why := failed(row):
            return why
    return None
