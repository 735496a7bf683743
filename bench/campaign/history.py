"""What a campaign records: one JSON line per operation and per fault.

An operation is one ``openstack`` command typed at a site: its kind (``create``, ``update``,
``delete``), the resource (``user``, ``image``), the name it creates or targets (unique per
create), the scope and mode, the sites the scope names, start and end (wall clock), its outcome
and the ids it returned. The checker reads nothing else from the run.

    >>> op = Op(1, "Paris-0", "create", "image", "es-camp-1", "Paris", "{image: Paris & Corte}",
    ...         "strict", ("Paris", "Corte"), 0.0, 1.0, OK)
    >>> Op.from_json(op.to_json()) == op
    True
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OK = "ok"
"""Acknowledged: the client got a success."""
REFUSED = "refused"
"""The client got a clear error (a non-zero exit with an answer)."""
UNKNOWN = "unknown"
"""The client gave up (timeout, connection lost): the write may or may not have happened."""
OUTCOMES = (OK, REFUSED, UNKNOWN)


@dataclass(frozen=True)
class Op:
    """One operation of a client."""

    seq: int
    client: str
    kind: str
    """``create``, ``update``, ``delete``, or ``boot`` (a server at one site of a ``|``)."""
    resource: str
    """``user``, ``image``, ``volume`` or ``server``."""
    name: str
    at: str
    """The site the command was typed at."""
    scope: str | None
    mode: str
    """``strict`` or ``eventual``."""
    sites: tuple[str, ...]
    """The sites the scope names (the members of a set; the one site of a 1-DC call)."""
    start: float
    end: float
    outcome: str
    ids: tuple[str, ...] = ()
    value: str | None = None
    """What an update wrote (the checker expects the last acknowledged one)."""
    error: str = ""

    @property
    def replicated(self) -> bool:
        return len(self.sites) > 1

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> Op:
        raw = json.loads(line)
        raw["sites"], raw["ids"] = tuple(raw["sites"]), tuple(raw["ids"])
        return cls(**raw)


@dataclass(frozen=True)
class Fault:
    """One fault of the schedule as applied: its kind, the sites it touched, when."""

    kind: str
    sites: tuple[str, ...]
    start: float
    end: float
    detail: dict[str, Any] = field(default_factory=dict)

    def overlaps(self, op: Op) -> bool:
        return self.start <= op.end and op.start <= self.end

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> Fault:
        raw = json.loads(line)
        raw["sites"] = tuple(raw["sites"])
        return cls(**raw)


def write_lines(path: Path, items: Iterable[Op | Fault]) -> None:
    path.write_text("".join(item.to_json() + "\n" for item in items))


def read_ops(path: Path) -> list[Op]:
    return [Op.from_json(line) for line in path.read_text().splitlines() if line.strip()]
