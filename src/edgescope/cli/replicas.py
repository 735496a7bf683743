"""``edgescope replicas list|show|pending|adopt``: the replica sets and queued writes of one site.

    edgescope replicas list --state-dir /var/lib/edgescope --site Paris
    edgescope replicas show 1f0c... --url http://127.0.0.1:20190     # ask a running proxy
    edgescope replicas pending --state-dir /var/lib/edgescope/Paris --json
    edgescope replicas adopt m1.tiny --url http://paris:20190 --service compute \
        --collection /flavors --sites Paris,Corte --token "$OS_TOKEN"

Reads the site's registry (``<state-dir>[/<site>]/replicas.sqlite3``, opened read-only, safe
while the proxy runs) or a running proxy's ``GET /edgescope/replicas``. Thin: rendering and
exit codes only (2 for bad input, 1 for an unreachable proxy).
"""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from edgescope.errors import ConfigError
from edgescope.proxy.protocol import ADOPT_PATH, REPLICAS_PATH
from edgescope.replicas.database import redact
from edgescope.replicas.registry import FILENAME, Registry, RegistryError

app = typer.Typer(
    name="replicas", help="Replicated resources: sets and pending writes.", no_args_is_help=True
)
_out = Console()
_err = Console(stderr=True, soft_wrap=True)

StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar="EDGESCOPE_REPLICAS_DIR",
        help="The proxies' state dir (with --site) or one site's own dir.",
    ),
]
SiteOption = Annotated[str | None, typer.Option("--site", help="Site name under --state-dir.")]
DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        envvar="EDGESCOPE_REPLICAS_DATABASE",
        help="The database the site's proxies share ([replicas] database), e.g. "
        "mysql+pymysql://edgescope:PASSWORD@10.0.0.10/edgescope.",
    ),
]
UrlOption = Annotated[
    str | None, typer.Option("--url", help="Ask a running proxy instead, e.g. http://host:20190.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
TokenOption = Annotated[
    str | None,
    typer.Option(envvar="OS_TOKEN", help="With --url: an operator's token at that site."),
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    _err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code)


def _load(
    state_dir: Path | None,
    site: str | None,
    url: str | None,
    token: str | None = None,
    database: str | None = None,
) -> dict[str, Any]:
    """``{"site", "sets": [...], "pending": [...]}`` from the registry or a proxy."""
    if database is not None:
        return _read(database, site or "(shared database)")
    if url is not None:
        target = url.rstrip("/") + REPLICAS_PATH
        request = urllib.request.Request(target, headers={"X-Auth-Token": token or ""})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                data: dict[str, Any] = json.loads(response.read())
                return data
        except urllib.error.HTTPError as exc:
            raise _fail(f"{target}: {_message(exc)}", 1) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise _fail(f"cannot read {target}: {exc}", 1) from None
    if state_dir is None:
        raise _fail("give --state-dir (or EDGESCOPE_REPLICAS_DIR) or --url")
    directory = state_dir / site if site else state_dir
    if not (directory / FILENAME).is_file():
        found = sorted(p.parent.name for p in state_dir.glob(f"*/{FILENAME}"))
        hint = f"; sites found there: {', '.join(found)} (use --site)" if found else ""
        raise _fail(f"no replica registry at {directory / FILENAME}{hint}")
    return _read(directory, site or directory.name)


def _read(location: str | Path, site: str) -> dict[str, Any]:
    try:
        registry = Registry(location, read_only=True)
        try:
            return {
                "site": site,
                "sets": [s.to_json() for s in registry.sets()],
                "pending": [p.summary() for p in registry.pending()],
            }
        finally:
            registry.close()
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    except RegistryError as exc:
        message = str(exc)
        raise _fail(f"cannot read the registry at {redact(str(location))}: {message}", 1) from None
    except (sqlite3.Error, SQLAlchemyError) as exc:
        message = str(exc).splitlines()[0]
        raise _fail(f"cannot read the registry at {redact(str(location))}: {message}", 1) from None


@app.command("list")
def list_sets(
    state_dir: StateDir = None,
    site: SiteOption = None,
    database: DatabaseOption = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
    token: TokenOption = None,
) -> None:
    """The replica sets this site knows: handle, service and member sites."""
    data = _load(state_dir, site, url, token, database)
    if as_json:
        _out.print_json(data=data["sets"])
        return
    table = Table(title=f"replica sets at {data['site']}")
    for column in ("handle", "service", "collection", "members"):
        table.add_column(column)
    for s in data["sets"]:
        members = ", ".join(f"{m['site']}({m['state']})" for m in s["members"])
        table.add_row(s["handle"], s["service"], s["collection"], members)
    _out.print(table)


@app.command()
def show(
    handle: Annotated[str, typer.Argument(help="The handle, or any member's id.")],
    state_dir: StateDir = None,
    site: SiteOption = None,
    database: DatabaseOption = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
    token: TokenOption = None,
) -> None:
    """One replica set: each member's site, id and state, and its queued writes."""
    data = _load(state_dir, site, url, token, database)
    found = next(
        (
            s
            for s in data["sets"]
            if s["handle"] == handle or any(m["id"] == handle for m in s["members"])
        ),
        None,
    )
    if found is None:
        raise _fail(f"no replica set {handle!r} at {data['site']}")
    queued = [p for p in data["pending"] if p["handle"] == found["handle"]]
    if as_json:
        _out.print_json(data={**found, "pending": queued})
        return
    table = Table(title=f"{found['service']} {found['handle']} ({found['collection']})")
    for column in ("site", "id", "state", "queued writes"):
        table.add_column(column)
    for m in found["members"]:
        count = sum(1 for p in queued if p["target"] == m["site"])
        table.add_row(m["site"], m["id"] or "-", m["state"], str(count))
    _out.print(table)


@app.command()
def pending(
    state_dir: StateDir = None,
    site: SiteOption = None,
    database: DatabaseOption = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
    token: TokenOption = None,
) -> None:
    """Writes queued (eventual mode) for unreachable member sites, in replay order."""
    data = _load(state_dir, site, url, token, database)
    if as_json:
        _out.print_json(data=data["pending"])
        return
    table = Table(title=f"pending writes at {data['site']}")
    for column in ("seq", "target", "method", "path", "handle", "attempts", "last error"):
        table.add_column(column)
    for p in data["pending"]:
        table.add_row(
            str(p["seq"]),
            p["target"],
            p["method"],
            p["path"],
            p["handle"] or "-",
            str(p["attempts"]),
            p["last_error"][:60],
        )
    _out.print(table)


@app.command()
def adopt(
    name: Annotated[str, typer.Argument(help="The resources' name, the same at every site.")],
    url: Annotated[str, typer.Option("--url", help="A proxy of one of the sites.")],
    service: Annotated[str, typer.Option(help="Service type, e.g. compute, image.")],
    collection: Annotated[str, typer.Option(help="The collection's path, e.g. /flavors.")],
    sites: Annotated[str, typer.Option(help="Comma-separated sites, e.g. Paris,Corte.")],
    token: Annotated[
        str, typer.Option(envvar="OS_TOKEN", help="An operator's token at the proxy's site.")
    ],
) -> None:
    """Adopt the same-named resources of several sites as one replica set."""
    body = {
        "service": service,
        "collection": collection,
        "name": name,
        "sites": [s.strip() for s in sites.split(",") if s.strip()],
    }
    target = url.rstrip("/") + ADOPT_PATH
    request = urllib.request.Request(
        target,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-Auth-Token": token},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise _fail(_message(exc), 1) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise _fail(f"cannot reach {target}: {exc}", 1) from None
    members = ", ".join(f"{m['site']}={m['id']}" for m in answer["set"]["members"])
    _out.print(f"{name}: replica set {answer['set']['handle']} ({members})", highlight=False)


def _message(exc: urllib.error.HTTPError) -> str:
    """The proxy's own message in an error answer, else the HTTP error."""
    try:
        return str(json.loads(exc.read())["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return str(exc)
