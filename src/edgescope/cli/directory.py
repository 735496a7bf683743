"""``edgescope directory ...``: endorse a site's key, revoke it, read a proxy's directory.

    edgescope proxy keygen --out authority.key                # an authority is a key pair
    edgescope directory endorse Lyon --authority-key authority.key \\
        --public-key ed25519:... --days 365 --out lyon.endorsement
    edgescope directory revoke Lyon --authority-key authority.key --public-key ed25519:... \\
        --url https://10.66.0.1:20191            # spreads from there like any entry
    edgescope directory list --url http://127.0.0.1:20190
    edgescope directory leave --config lyon.toml               # a site retires

Thin: loading, rendering and exit codes only (2 for bad input, 1 for failures).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgescope.cli.extensions import TABLES
from edgescope.directory import model
from edgescope.directory.leave import leave as leave_edge
from edgescope.errors import ConfigError
from edgescope.proxy import keys
from edgescope.proxy.config import load_config
from edgescope.proxy.protocol import DIRECTORY_PATH, DIRECTORY_REVOKE_PATH

app = typer.Typer(
    name="directory", help="The signed site directory: endorse, revoke, list, leave.",
    no_args_is_help=True,
)  # fmt: skip
_out = Console()
_err = Console(stderr=True, soft_wrap=True)
AuthorityKey = Annotated[Path, typer.Option(help="The authority's private key (PEM).")]
PublicKey = Annotated[str, typer.Option(help="The site's public key, ed25519:...")]
CaFile = Annotated[Path | None, typer.Option(help="CA to verify an https proxy with.")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    _err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code)


@app.command()
def endorse(
    site: Annotated[str, typer.Argument(help="The site's name.")],
    authority_key: AuthorityKey,
    public_key: PublicKey,
    days: Annotated[float, typer.Option(help="How long the endorsement is valid.")] = 365.0,
    out: Annotated[Path | None, typer.Option("--out", "-o")] = None,
) -> None:
    """Sign that SITE's key is PUBLIC_KEY: what its [directory] endorsement_file holds."""
    try:
        authority = keys.load_private_file(authority_key)
        cert = model.endorse(
            authority, site, keys.load_public(public_key), expires=time.time() + days * 86400
        )
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    text = json.dumps(cert.to_json(), indent=2) + "\n"
    if out is None:
        print(text, end="")
    else:
        out.write_text(text)


@app.command()
def revoke(
    site: Annotated[str, typer.Argument(help="The site whose key is revoked.")],
    authority_key: AuthorityKey,
    public_key: PublicKey,
    url: Annotated[str, typer.Option(help="A proxy to hand it to (it spreads from there).")],
    ca_file: CaFile = None,
) -> None:
    """Revoke SITE's key at every site that trusts this authority."""
    try:
        revocation = model.revoke(
            keys.load_private_file(authority_key), site, keys.load_public(public_key)
        )
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    _request(url + DIRECTORY_REVOKE_PATH, {"revocations": [revocation.to_json()]}, ca_file)
    _out.print(f"revoked {site}'s key {revocation.key} (spreading from {url})", highlight=False)


@app.command()
def leave(
    config: Annotated[Path, typer.Option(help="The leaving site's proxy config (TOML).")],
) -> None:
    """The site of CONFIG leaves the edge: a signed "left" entry pushed to the sites it knows
    (its proxy may be stopped already; starting it again rejoins)."""
    try:
        entry, reached = asyncio.run(leave_edge(load_config(config, extensions=TABLES)))
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if not reached:
        raise _fail(f"{entry.site} left, but no site took the news (none answered)", 1)
    _out.print(f"{entry.site} left; {len(reached)} site(s) took the news and spread it",
               highlight=False)  # fmt: skip


@app.command("list")
def list_sites(
    url: Annotated[str, typer.Option(help="A proxy, e.g. http://127.0.0.1:20190.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    ca_file: CaFile = None,
) -> None:
    """The sites a proxy's directory admitted."""
    doc = _request(url + DIRECTORY_PATH, None, ca_file)
    entries = doc.get("entries", []) if isinstance(doc, dict) else []
    if as_json:
        _out.print_json(data=entries)
        return
    table = Table(title=f"site directory at {doc.get('site', url)}")
    for column in ("site", "state", "url", "version", "services"):
        table.add_column(column)
    for e in sorted(entries, key=lambda e: str(e.get("site"))):
        table.add_row(str(e.get("site")), str(e.get("state")), str(e.get("url")),
                      str(e.get("version")), ", ".join(e.get("services", [])))  # fmt: skip
    _out.print(table)


def _request(url: str, payload: Any, ca_file: Path | None) -> Any:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"},
        method="POST" if data else "GET",
    )  # fmt: skip
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:
            return json.loads(answer.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise _fail(f"cannot reach {url}: {exc}", 1) from None
