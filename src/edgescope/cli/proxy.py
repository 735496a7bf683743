"""``edgescope proxy ...``: run a site proxy, show its peers, generate its config.

    edgescope proxy run --config paris.toml [--state-dir /var/lib/edgescope/Paris]
    edgescope proxy status --config paris.toml [--json]
    edgescope proxy keygen --out /etc/edgescope/paris.key     # prints the public key
    openstack endpoint list -f json | edgescope proxy gen-config --site Paris \\
        --listen 127.0.0.1:20190 --private-key-file /etc/edgescope/paris.key \\
        --peer Corte=https://... --peer-key Corte=ed25519:...

Thin: loading, rendering and exit codes only (2 for bad input, 1 for failures).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from yarl import URL

from edgescope.aio import tune_gc
from edgescope.cli.extensions import TABLES, build_extensions, load_site, parse_site
from edgescope.errors import ConfigError, EdgescopeError
from edgescope.proxy import keys
from edgescope.proxy.config import ProxyConfig, load_config
from edgescope.proxy.extension import Extension
from edgescope.proxy.forward import STATUS_MAX_BYTES, Upstream, get_json
from edgescope.proxy.gen_config import load_endpoints, site_toml
from edgescope.proxy.siteclient import SiteClient

app = typer.Typer(name="proxy", help="The per-site scope proxy.", no_args_is_help=True)
_out = Console()
_err = Console(stderr=True, soft_wrap=True)
ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="The site's proxy TOML.")]


@contextmanager
def _clean_errors() -> Iterator[None]:
    try:
        yield
    except ConfigError as exc:
        _err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    except (EdgescopeError, OSError) as exc:
        _err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None


@app.command()
def run(
    config: ConfigOption,
    log_level: str = "INFO",
    loop: Annotated[
        str, typer.Option(help="Event loop: auto (uvloop if installed), uvloop or asyncio.")
    ] = "auto",
    state_dir: Annotated[
        Path | None,
        typer.Option(
            help="Replicated resources on, with their registry in this folder "
            "(overrides [replicas] state_dir)."
        ),
    ] = None,
) -> None:
    """Serve the site's services through the proxy until interrupted."""
    with _clean_errors():
        site_config = load_site(config, state_dir)
        extensions = build_extensions(site_config, state_dir)
        logging.basicConfig(level=log_level.upper(), stream=sys.stdout, format="%(message)s")
        with asyncio.Runner(loop_factory=_loop_factory(loop)) as runner:
            runner.run(_serve(site_config, extensions))


def _loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when asked, or with ``auto`` when it is installed; otherwise asyncio's loop."""
    if choice not in ("auto", "uvloop", "asyncio"):
        raise ConfigError(f"--loop {choice!r}: valid choices are auto, uvloop, asyncio")
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ConfigError(
                "--loop uvloop: uvloop is not installed (pip install uvloop)"
            ) from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


async def _serve(config: ProxyConfig, extensions: list[Extension]) -> None:
    from edgescope.proxy.server import SiteProxy

    proxy = SiteProxy(config, extensions=extensions)
    await proxy.start()
    tune_gc()  # fewer collections per call (a wide & especially): edgescope/aio.py
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    listeners = ", ".join(f"{name}={host}:{port}" for name, (host, port) in proxy.addresses.items())
    # One line on stdout, always: supervisors and tests read the bound ports from it.
    print(json.dumps({"event": "started", "site": config.site, "listen": listeners}), flush=True)
    await stop.wait()
    await proxy.stop()


@app.command()
def status(
    config: ConfigOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Each peer's reachability (probed now) and breaker state (from the running proxy)."""
    with _clean_errors():
        site_config = load_config(config, extensions=TABLES)
        rows = asyncio.run(_status(site_config))
    if as_json:
        _out.print_json(json.dumps(rows))
        return
    table = Table(title=f"edgescope proxy of {site_config.site}")
    for column in ("peer", "url", "reachable", "latency", "breaker", "last error"):
        table.add_column(column, overflow="fold")
    for row in rows:
        reachable = "[green]yes[/green]" if row["reachable"] else f"[red]no[/red] ({row['error']})"
        table.add_row(
            row["peer"],
            row["url"],
            reachable,
            f"{row['latency_ms']:.1f} ms" if row["reachable"] else "-",
            row["breaker"],
            row["last_error"],
        )
    _out.print(table)


async def _status(config: ProxyConfig) -> list[dict[str, Any]]:
    async with Upstream() as upstream:
        return await status_rows(config, upstream)


async def status_rows(
    config: ProxyConfig, client: SiteClient, clock: Callable[[], float] = time.monotonic
) -> list[dict[str, Any]]:
    """One row per peer: probed now through ``client`` (reachable, latency), with the breaker
    the running proxy's ``/edgescope/status`` reports (unknown when it does not answer)."""
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
    local_url = URL(f"http://{host}:{config.port}/edgescope/status")
    try:
        local: Any = await get_json(
            client, config.site, local_url, timeout=2.0, max_bytes=STATUS_MAX_BYTES
        )
        breakers = {p["name"]: p for p in local["peers"]}
    except EdgescopeError:
        breakers = {}
    rows = []
    for peer in config.peers:
        started = clock()
        try:
            await get_json(
                client, peer.name, peer.url / "edgescope" / "health", timeout=peer.connect_timeout
            )
            reachable, error = True, ""
        except EdgescopeError as exc:
            reachable, error = False, getattr(exc, "reason", str(exc))
        state = breakers.get(peer.name, {})
        rows.append(
            {
                "peer": peer.name,
                "url": str(peer.url),
                "reachable": reachable,
                "error": error,
                "latency_ms": (clock() - started) * 1000,
                "breaker": state.get("breaker", "unknown (proxy not running)"),
                "last_error": state.get("last_error", ""),
            }
        )
    return rows


@app.command("gen-config")
def gen_config(
    site: Annotated[str, typer.Option(help="This site's name.")],
    listen: Annotated[str, typer.Option(help="HOST:PORT of the proxy's main listener.")],
    private_key_file: Annotated[
        str, typer.Option(help="Path of this site's key (`edgescope proxy keygen`).")
    ],
    endpoints: Annotated[
        str, typer.Option(help="JSON of 'openstack endpoint list -f json' ('-' = stdin).")
    ] = "-",
    interface: str = "public",
    region: Annotated[str | None, typer.Option(help="Keep only this region.")] = None,
    peer: Annotated[list[str] | None, typer.Option(help="NAME=URL of a peer proxy.")] = None,
    peer_key: Annotated[
        list[str] | None, typer.Option(help="NAME=ed25519:... : a peer's public key.")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
) -> None:
    """Write a site TOML from the site's Keystone catalog (see docs/proxy.md)."""
    with _clean_errors():
        text = sys.stdin.read() if endpoints == "-" else Path(endpoints).read_text()
        keys = dict(_pair(item, "--peer-key", "NAME=ed25519:...") for item in peer_key or [])
        peers = []
        for item in peer or []:
            name, url = _pair(item, "--peer", "NAME=URL")
            if name not in keys:
                raise ConfigError(f"--peer {name}: give its public key too (--peer-key {name}=...)")
            peers.append((name, url, keys[name]))
        toml = site_toml(
            load_endpoints(text),
            site=site,
            listen=listen,
            private_key_file=private_key_file,
            interface=interface,
            region=region,
            peers=peers,
        )
        load_config_text_check(toml)
        if output is None:
            _out.print(toml, end="", highlight=False, markup=False)
        else:
            output.write_text(toml)


def load_config_text_check(toml: str) -> None:
    """Validate generated text as the proxy will (its key file aside)."""
    import tomllib

    data = tomllib.loads(toml)
    data.pop("private_key_file", None)
    parse_site({**data, "private_key": "ed25519:" + "A" * 43 + "="})


def _pair(item: str, option: str, form: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name or not value:
        raise ConfigError(f"{option} {item!r}: expected {form}")
    return name, value


@app.command()
def keygen(
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the private key.")],
    force: Annotated[bool, typer.Option(help="Replace an existing key file.")] = False,
) -> None:
    """Make this site's Ed25519 key pair: the private key (PEM, mode 0600) to OUT, the public
    key on stdout, for every peer's [[peers]] public_key."""
    with _clean_errors():
        if out.exists() and not force:
            raise ConfigError(f"{out} exists; --force replaces it (peers must learn the new key)")
        key = keys.generate()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.touch(mode=0o600)
        out.chmod(0o600)
        out.write_bytes(keys.private_pem(key))
        print(keys.public_text(key.public_key()))
