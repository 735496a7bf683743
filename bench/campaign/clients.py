"""The campaign's I/O with the sites: clients calling the sites' APIs, and what the checker
reads back. Every call is made inside the namespace of the site it is typed at, by one of two
kinds of client: ``http`` clients through a long-lived agent (:mod:`agent`, keystoneauth with
one token, the scope sent as the OSC plugin sends it), fast enough for thousands of
operations; ``cli`` clients through the real ``openstack`` CLI
(:class:`~edgescope.demo.probes.Sites`), seconds per command on a loaded machine, so that
path is exercised too without slowing the others. Reads for the checker go through the CLI,
at each site by its admin, no scope.

A client at one site loops, until its deadline, over operations drawn from its own seeded
random stream: replicated (``&``) creates of users and images over pairs or all sites, strict
or eventual; updates (users' description) and deletes of its own acknowledged resources, in
the same scope and mode; 1-DC creates and deletes at its own site.
"""

from __future__ import annotations

import itertools
import json
import random
import secrets
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.campaign.checker import Seen
from bench.campaign.history import OK, REFUSED, UNKNOWN, Op
from edgescope.demo.probes import Sites, last_line
from edgescope.openstack.cli_runner import CliResult

REPO = Path(__file__).resolve().parents[2]

SERVICE = {"user": "keystone", "image": "image", "volume": "cinder", "server": "nova"}
LIVE_VOLUMES = 2
"""Volumes a client holds at once (cinder's default quota is 10 per project and site)."""
BOOTS = 3
"""``|`` boots per client and run (servers are only deleted after the run: nova's quota)."""
NOVA_VERSION = {"OpenStack-API-Version": "compute 2.37"}  # networks "none"
CALL_TIMEOUT = 120.0
"""Far above the proxies' own timeouts: a call that reaches it is recorded as unknown."""
CLI_TIMEOUT = 300.0
"""The same for one ``openstack`` command, most of whose time is its own start-up: at a load
average of 30-40, the first 1-DC command at Marseille sent nothing to the site within 120 s
(its HAProxy logged no such request) and was recorded as a lost 1-DC call (``local-failed``),
twice on 2026-12-07."""
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
    """``&`` over the sites (``|`` for servers: a boot at one of them); none for one site."""
    if len(sites) == 1:
        return None
    return (
        "{" + f"{SERVICE[resource]}: {(' | ' if resource == 'server' else ' & ').join(sites)}" + "}"
    )


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


class AgentProcess:
    """The :mod:`agent` of one client, in its site's namespace; respawned if it is lost."""

    def __init__(self, sites: Sites, at: str) -> None:
        self.argv = [*sites.exec_prefix.get(at, ()), sys.executable, "-m", "bench.campaign.agent",
                     str(sites.clouds_yaml), at]  # fmt: skip
        self.proc: subprocess.Popen[str] | None = None
        self.refs: tuple[str, str] | None = None

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.proc is None or self.proc.poll() is not None:
            pipe, null = subprocess.PIPE, subprocess.DEVNULL
            self.proc = subprocess.Popen(
                self.argv, stdin=pipe, stdout=pipe, stderr=null, text=True, cwd=REPO
            )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            ready, _, _ = select.select([self.proc.stdout], [], [], CALL_TIMEOUT)
            line = self.proc.stdout.readline() if ready else ""
        except OSError as exc:
            line, ready = "", [str(exc)]
        if not line:
            self.close()
            return {"status": None, "body": None, "error": "timed out: the agent did not answer"}
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is not None:
                    pipe.close()
            self.proc = None


def http_outcome(answer: dict[str, Any]) -> str:
    """As :func:`outcome`: a gateway's 502/503/504 (no answer from the site) is unknown."""
    status = answer["status"]
    if status is None or (status in (502, 503, 504) and "edgescope" not in answer["error"]):
        return UNKNOWN
    return OK if status < 400 else REFUSED


def client(
    sites: Sites, recorder: Recorder, at: str, all_sites: Sequence[str], seed: int,
    deadline: float, stop: threading.Event, via: str = "http",
) -> None:  # fmt: skip
    """One client at ``at`` (``via`` http or cli): operations until ``deadline`` (monotonic)
    or ``stop``."""
    rng = random.Random(f"{seed}-{at}-{via}")
    mine: list[Op] = []  # acknowledged creates of this client, not deleted
    others = [s for s in all_sites if s != at]
    agent = AgentProcess(sites, at)
    who = f"{at}-{via}"
    booted = 0

    def call(kind: str, resource: str, name: str, members: tuple[str, ...], mode: str,
             value: str | None = None, ids: tuple[str, ...] = ()) -> Op:  # fmt: skip
        if via == "cli":
            return _type(sites, recorder, who, at, kind, resource, name, members, mode, value)
        return _http(agent, recorder, who, at, kind, resource, name, members, mode, value, ids)

    try:
        while time.monotonic() < deadline and not stop.is_set():
            roll = rng.random()
            if mine and roll < 0.15:
                made = mine.pop(rng.randrange(len(mine)))
                op = call("delete", made.resource, made.name, made.sites, made.mode, ids=made.ids)
                if op.outcome == REFUSED:  # (an unknown delete: leave the name alone from now on)
                    mine.append(made)
            elif mine and roll < 0.30 and any(m.resource == "user" for m in mine):
                made = rng.choice([m for m in mine if m.resource == "user"])
                call("update", "user", made.name, made.sites, made.mode,
                     value=secrets.token_hex(4), ids=made.ids)  # fmt: skip
            elif via == "http" and roll < 0.36 and booted < BOOTS and len(all_sites) > 1:
                booted += 1
                _, name = recorder.next_name()
                members = tuple([at, *rng.sample(others, 1)][:: rng.choice((1, -1))])
                _http(agent, recorder, who, at, "boot", "server", name, members, "strict",
                      None, boot_refs(agent))  # fmt: skip
            else:
                resource = rng.choice(("user", "image", "volume"))
                if (resource == "volume" and via == "cli") or (
                    sum(m.resource == "volume" for m in mine) >= LIVE_VOLUMES
                ):
                    resource = "image"
                if roll < 0.55:
                    members: tuple[str, ...] = (at,)
                    mode = "strict"
                else:
                    size = 3 if len(all_sites) > 2 and rng.random() < 0.3 else 2
                    members = tuple([at, *rng.sample(others, size - 1)])
                    mode = rng.choice(("strict", "eventual"))
                _, name = recorder.next_name()
                op = call("create", resource, name, members, mode)
                if op.outcome == OK:
                    mine.append(op)
            stop.wait(rng.uniform(0.05, 0.2))
    finally:
        agent.close()


def _request(kind: str, resource: str, name: str, value: str | None,
             ids: tuple[str, ...]) -> tuple[str, str, str, dict[str, Any] | None]:  # fmt: skip
    """(method, service, path, body) of one operation, as the CLI would send it."""
    if resource == "user":
        if kind == "create":
            return "POST", "identity", "/v3/users", {
                "user": {"name": name, "description": "v0", "enabled": True}}  # fmt: skip
        path = f"/v3/users/{ids[0]}"
        if kind == "update":
            return "PATCH", "identity", path, {"user": {"description": value}}
        return "DELETE", "identity", path, None
    if resource == "volume":
        if kind == "create":
            return "POST", "volumev3", "/volumes", {"volume": {"name": name, "size": 1}}
        return "DELETE", "volumev3", f"/volumes/{ids[0]}", None
    if resource == "server":  # a boot: ids are the image and the flavor
        body = {"server": {"name": name, "imageRef": ids[0], "flavorRef": ids[1],
                           "networks": "none"}}  # fmt: skip
        return "POST", "compute", "/servers", body
    if kind == "create":
        body = {"name": name, "visibility": "private", "disk_format": "raw",
                "container_format": "bare"}  # fmt: skip
        return "POST", "image", "/v2/images", body
    return "DELETE", "image", f"/v2/images/{ids[0]}", None


def boot_refs(agent: AgentProcess) -> tuple[str, str]:
    """The ids of ``debian`` and ``m1.tiny`` as the client's own site names them (the testbed
    adopts both as one resource across sites, so the proxy translates them elsewhere)."""
    if agent.refs is None:
        images = agent.call({"method": "GET", "service": "image", "path": "/v2/images?name=debian"})
        flavors = agent.call({"method": "GET", "service": "compute", "path": "/flavors"})
        image = (images["body"] or {}).get("images") or [{"id": "?"}]
        flavor = [f for f in (flavors["body"] or {}).get("flavors", []) if f["name"] == "m1.tiny"]
        agent.refs = (str(image[0]["id"]), str((flavor or [{"id": "?"}])[0]["id"]))
    return agent.refs


def _http(
    agent: AgentProcess, recorder: Recorder, who: str, at: str, kind: str, resource: str, name: str,
    members: tuple[str, ...], mode: str, value: str | None, ids: tuple[str, ...],
) -> Op:  # fmt: skip
    seq, _ = recorder.next_name()
    scope = scope_of(resource, members)
    method, service, path, body = _request(kind, resource, name, value, ids)
    start = time.time()
    headers = NOVA_VERSION if resource == "server" else {}
    answer = agent.call({"method": method, "service": service, "path": path, "body": body,
                         "scope": scope, "mode": mode, "headers": headers})  # fmt: skip
    end = time.time()
    result = http_outcome(answer)
    if result == OK and kind in ("create", "boot"):
        doc = answer["body"] or {}
        doc = doc.get(resource) or doc
        ids = (str(doc.get("id")),)
    if kind == "create":
        value = "v0" if resource == "user" else None
    error = "" if result == OK else f"HTTP {answer['status']}: {answer['error'][:300]}"
    op = Op(seq, who, kind, resource, name, at, scope, mode, members, start, end,
            result, ids if kind in ("create", "boot") else (), value, error)  # fmt: skip
    recorder.add(op)
    return op


def _type(
    sites: Sites, recorder: Recorder, who: str, at: str, kind: str, resource: str, name: str,
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
                       timeout=CLI_TIMEOUT)  # fmt: skip
    end = time.time()
    ids: tuple[str, ...] = ()
    if result.ok and kind == "create":
        ids = tuple(line.split('"')[3] for line in result.stdout.splitlines() if '"id"' in line)
    if kind == "create":
        value = "v0" if resource == "user" else None
    error = "" if result.ok else last_line(result.stderr, 300)
    scope = scope_of(resource, members)
    op = Op(seq, who, kind, resource, name, at, scope, mode, members, start, end,
            outcome(result), ids, value, error)  # fmt: skip
    recorder.add(op)
    return op


LISTS = {
    "user": ("identity", "/v3/users", "users"),
    "image": ("image", "/v2/images?limit=1000", "images"),
    "volume": ("volumev3", "/volumes?all_tenants=1&limit=1000", "volumes"),
    "server": ("compute", "/servers?all_tenants=1&limit=1000", "servers"),
}
"""What the checker lists at each site: (service, path, key of the list). Every project's
servers and volumes: one booted or created from another site belongs to the project its
delegated admin acts in there."""


def observe(sites: Sites, site: str, prefix: str) -> list[Seen]:
    """Every user, image, volume and server of the run that ``site``'s own services list,
    asked at ``site`` by its admin with no scope (through a fresh agent: one token, fast)."""
    agent = AgentProcess(sites, site)
    found = []
    try:
        for resource, (service, path, key) in LISTS.items():
            while path:
                answer = agent.call({"method": "GET", "service": service, "path": path})
                if answer["status"] != 200:
                    raise RuntimeError(f"{site}: GET {path}: {answer['status']} {answer['error']}")
                found += [
                    Seen(resource, site, str(row["name"]), str(row["id"]), row.get("description"))
                    for row in answer["body"][key]
                    if str(row.get("name") or "").startswith(prefix)
                ]
                path = answer["body"].get("next", "") if resource == "image" else ""
    finally:
        agent.close()
    return found


def clean_up(sites: Sites, seen: Sequence[Seen]) -> int:
    """Delete the run's servers and volumes at each site (nova's and cinder's quotas), 1-DC
    by id through each site's agent; returns how many deletes were refused (not checked)."""

    def at(site: str) -> int:
        refused, agent = 0, AgentProcess(sites, site)
        try:
            for row in seen:
                if row.site == site and row.resource in ("server", "volume"):
                    service, path = {"server": ("compute", "/servers"),
                                     "volume": ("volumev3", "/volumes")}[row.resource]  # fmt: skip
                    answer = agent.call({"method": "DELETE", "service": service,
                                         "path": f"{path}/{row.id}"})  # fmt: skip
                    refused += http_outcome(answer) != OK
        finally:
            agent.close()
        return refused

    with ThreadPoolExecutor(max_workers=3) as pool:
        return sum(pool.map(at, sorted({s.site for s in seen})))


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
