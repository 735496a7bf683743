"""The campaign's I/O with the sites: clients typing ``openstack`` commands, and what the
checker reads back. Everything goes through the real CLI inside each site's namespace
(:class:`~edgescope.demo.probes.Sites`); reads are asked at each site by its admin, no scope.

A client at one site loops, until its deadline, over operations drawn from its own seeded
random stream: replicated (``&``) creates of users and images over pairs or all sites, strict
or eventual; updates (users' description) and deletes of its own acknowledged resources, in
the same scope and mode; 1-DC creates and deletes at its own site.
"""

from __future__ import annotations

import itertools
import random
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.campaign.checker import Seen
from bench.campaign.history import OK, REFUSED, UNKNOWN, Op
from edgescope.demo.probes import Sites, last_line
from edgescope.openstack.cli_runner import CliResult

SERVICE = {"user": "keystone", "image": "image"}
CALL_TIMEOUT = 120.0
"""Far above the proxies' own timeouts: a command that reaches it is recorded as unknown."""
_GAVE_UP = ("timed out", "Unable to establish connection", "Connection aborted",
            "RemoteDisconnected", "Connection reset", "Max retries exceeded")  # fmt: skip


def outcome(result: CliResult) -> str:
    """``ok``, ``refused`` (a clear answer), or ``unknown`` (the client lost the call)."""
    if result.ok:
        return OK
    if result.code < 0 or any(word in result.stderr for word in _GAVE_UP):
        return UNKNOWN
    return REFUSED


def scope_of(resource: str, sites: Sequence[str]) -> str | None:
    if len(sites) == 1:
        return None
    return "{" + f"{SERVICE[resource]}: {' & '.join(sites)}" + "}"


@dataclass
class Recorder:
    """The run's history, shared by the client threads."""

    run: str = field(default_factory=lambda: secrets.token_hex(3))
    ops: list[Op] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def prefix(self) -> str:
        return f"es-camp-{self.run}-"

    def next_name(self) -> tuple[int, str]:
        with self._lock:
            seq = next(self._seq)
        return seq, f"{self.prefix}{seq}"

    def add(self, op: Op) -> None:
        with self._lock:
            self.ops.append(op)


def client(
    sites: Sites, recorder: Recorder, at: str, all_sites: Sequence[str], seed: int,
    deadline: float, stop: threading.Event,
) -> None:  # fmt: skip
    """One client at ``at``: operations until ``deadline`` (monotonic) or ``stop``."""
    rng = random.Random(f"{seed}-{at}")
    mine: list[Op] = []  # acknowledged creates of this client, not deleted
    others = [s for s in all_sites if s != at]
    while time.monotonic() < deadline and not stop.is_set():
        roll = rng.random()
        if mine and roll < 0.15:
            made = mine.pop(rng.randrange(len(mine)))
            op = _type(sites, recorder, at, "delete", made.resource, made.name, made.sites,
                       made.mode)  # fmt: skip
            if op.outcome == REFUSED:  # (an unknown delete: leave the name alone from now on)
                mine.append(made)
        elif mine and roll < 0.30 and any(m.resource == "user" for m in mine):
            made = rng.choice([m for m in mine if m.resource == "user"])
            _type(sites, recorder, at, "update", "user", made.name, made.sites, made.mode,
                  value=secrets.token_hex(4))  # fmt: skip
        else:
            resource = rng.choice(("user", "image"))
            if roll < 0.55:
                members: tuple[str, ...] = (at,)
                mode = "strict"
            else:
                size = 3 if len(all_sites) > 2 and rng.random() < 0.3 else 2
                members = tuple([at, *rng.sample(others, size - 1)])
                mode = rng.choice(("strict", "eventual"))
            _, name = recorder.next_name()
            op = _type(sites, recorder, at, "create", resource, name, members, mode)
            if op.outcome == OK:
                mine.append(op)
        stop.wait(rng.uniform(0.1, 0.5))


def _type(
    sites: Sites, recorder: Recorder, at: str, kind: str, resource: str, name: str,
    members: tuple[str, ...], mode: str, value: str | None = None,
) -> Op:  # fmt: skip
    args: tuple[str, ...]
    if kind == "create":
        args = ("user", "create", "--description", "v0", name) if resource == "user" else (
            "image", "create", "--private", name)  # fmt: skip
        args = (*args, "-f", "json", "-c", "id")
    elif kind == "update":
        args = ("user", "set", "--description", str(value), name)
    else:
        args = (resource, "delete", name)
    seq, _ = recorder.next_name()
    start = time.time()
    result = sites.run(at, *args, cloud=at, scope=scope_of(resource, members), mode=mode,
                       timeout=CALL_TIMEOUT)  # fmt: skip
    end = time.time()
    ids: tuple[str, ...] = ()
    if result.ok and kind == "create":
        ids = tuple(line.split('"')[3] for line in result.stdout.splitlines() if '"id"' in line)
    if kind == "create":
        value = "v0" if resource == "user" else None
    error = "" if result.ok else last_line(result.stderr, 300)
    scope = scope_of(resource, members)
    op = Op(seq, f"{at}-client", kind, resource, name, at, scope, mode, members, start, end,
            outcome(result), ids, value, error)  # fmt: skip
    recorder.add(op)
    return op


def observe(sites: Sites, site: str, prefix: str) -> list[Seen]:
    """Every user and image of the run that ``site``'s own services list."""
    users = sites.json(site, "user", "list", "--long", cloud=site)
    images = sites.json(site, "image", "list", cloud=site)
    found = [
        Seen("user", site, str(u["Name"]), str(u["ID"]), u.get("Description"))
        for u in users
        if str(u["Name"]).startswith(prefix)
    ]
    found += [
        Seen("image", site, str(i["Name"]), str(i["ID"]))
        for i in images
        if str(i["Name"]).startswith(prefix)
    ]
    return found


def retry(what: Callable[[], list[Seen]], attempts: int = 5, pause: float = 3.0) -> list[Seen]:
    """A read after the heal may meet a site still warming up: a few bounded retries."""
    for attempt in range(attempts):
        try:
            return what()
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(pause)
    return []
