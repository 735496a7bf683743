"""``edgescope testbed ...``: thin typer wrappers on :class:`edgescope.testbed.Testbed`.

    edgescope testbed up --sites Paris,Corte,Marseille [--state-dir state] [--wan TOPOLOGY]
    edgescope testbed status            # table: sites, services, ports, PIDs, health, RSS
    edgescope testbed logs Paris glance [--lines 50]
    edgescope testbed env               # export OS_CLIENT_CONFIG_FILE=...
    edgescope testbed plug Paris PORT_ID [--mac MAC --server ID]   # as os-vif would
    edgescope testbed partition Paris Corte   # under --wan; also heal, wan-link, wan-status
    edgescope testbed down [--purge]

``--state-dir`` is the testbed's state folder for every command, WAN commands included
(they find the WAN from it); it defaults to ``$EDGESCOPE_STATE_DIR`` or ``./state``. The WAN
commands come from ``cli/wan.py``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgescope.errors import EdgescopeError
from edgescope.testbed import Testbed
from edgescope.testbed.layout import (
    CATALOG_MODES,
    PORT_BASE,
    SERVICES,
    TestbedUsageError,
    check_service,
    parse_sites,
)

app = typer.Typer(
    name="testbed",
    help="Real multi-site OpenStack on this machine, one edgescope proxy per site.",
    no_args_is_help=True,
)
_out = Console()
_err = Console(stderr=True, soft_wrap=True)

StateDir = Annotated[
    Path,
    typer.Option("--state-dir", envvar="EDGESCOPE_STATE_DIR", help="Where the testbed lives."),
]
DEFAULT_STATE = Path("state")


@contextmanager
def _clean_errors() -> Iterator[None]:
    """One red line instead of a traceback: exit 2 for bad input, 1 when the testbed fails."""
    try:
        yield
    except TestbedUsageError as exc:
        _err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    except EdgescopeError as exc:
        _err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None


def _wan_addresses(
    topology: str, sites: list[str]
) -> tuple[dict[str, tuple[str, tuple[str, ...]]], Path]:
    """Bring the WAN up (or attach to it) and give each site its address and netns prefix."""
    from edgescope.testbed.wan import DEFAULT_STATE_DIR, Wan, load_topology

    if (DEFAULT_STATE_DIR / "state.json").exists():
        wan = Wan.attach(DEFAULT_STATE_DIR)
    else:
        path = None if topology == "default" else Path(topology)
        wan = Wan.up(load_topology(path, sites=sites), DEFAULT_STATE_DIR)
    addresses = {s: (wan.site_address(s), tuple(wan.exec_prefix(s))) for s in sites}
    return addresses, DEFAULT_STATE_DIR


def _ephemeral_low() -> int:
    """First port the kernel may hand out to outgoing connections (listeners must avoid it)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


@app.command()
def up(
    sites: Annotated[str, typer.Option(help="Comma-separated site names.")] = (
        "Paris,Corte,Marseille"
    ),
    state_dir: StateDir = DEFAULT_STATE,
    wan: Annotated[
        str | None,
        typer.Option(
            help="Run each site in its own netns on an emulated WAN: a topology TOML "
            "file, or 'default' for the shipped one."
        ),
    ] = None,
    catalog: Annotated[
        str | None,
        typer.Option(
            help="'haproxy' (the default: each site's HAProxy, scoped calls to its proxy, as "
            "on a Kolla site), 'proxy' (the catalog points at each site's proxy) or 'direct' "
            "(no edgescope). Default: the state folder's, else haproxy."
        ),
    ] = None,
    port_base: Annotated[
        int, typer.Option(help="Site i uses ports PORT_BASE+100*i+0..99; RabbitMQ +5672.")
    ] = PORT_BASE,
) -> None:
    """Start every site (cold the first time, from a snapshot or warm after), idempotently."""
    with _clean_errors():
        names = parse_sites(sites)
        if catalog is not None and catalog not in CATALOG_MODES:
            raise TestbedUsageError(
                f"invalid --catalog {catalog!r}: choose {', '.join(CATALOG_MODES)}"
            )
        addresses, wan_state = _wan_addresses(wan, names) if wan else ({}, None)
        highest = port_base + 5673  # RabbitMQ's distribution port is the highest one
        if port_base < 1024 or highest >= _ephemeral_low():
            raise TestbedUsageError(
                f"invalid --port-base {port_base}: ports up to {highest} must stay below the "
                f"kernel's ephemeral range (from {_ephemeral_low()}); try 10000 or 20000"
            )
        testbed = Testbed.create(
            state_dir,
            names,
            catalog=catalog,
            port_base=port_base,
            addresses=addresses,
            wan_state=wan_state,
        )
        started = time.monotonic()
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=_err, transient=False) as progress:
            tasks: dict[str, TaskID] = {
                name: progress.add_task(f"[bold]{name}[/bold]: waiting", total=None)
                for name in ["*", *names]
            }

            def report(site: str, message: str) -> None:
                label = "RabbitMQ" if site == "*" else site
                progress.update(tasks[site], description=f"[bold]{label}[/bold]: {message}")

            try:
                results = testbed.up(report)
            finally:
                for task in tasks.values():
                    progress.update(task, total=1, completed=1)
        summary = ", ".join(f"{n} {r['kind']} {r['seconds']:.0f} s" for n, r in results.items())
        _out.print(f"testbed up in {time.monotonic() - started:.0f} s ({summary})")
        from edgescope.testbed.backends import why_not

        for reason in why_not():
            _err.print(f"[yellow]note:[/yellow] {reason}", highlight=False)
        _out.print(f"export OS_CLIENT_CONFIG_FILE={testbed.clouds_yaml}")
        first = names[0]
        _out.print(
            f"then: openstack --os-cloud {first} server list   "
            f"(or --os-cloud {first}-demo for the non-admin user)"
        )


@app.command()
def status(state_dir: StateDir = DEFAULT_STATE) -> None:
    """Table of sites, services, ports, PIDs, health and memory."""
    with _clean_errors():
        testbed = Testbed.from_state(state_dir)
        table = Table(title=f"edgescope testbed ({testbed.state_dir})")
        for column in ("site", "service", "port", "pid", "health", "RSS MB"):
            table.add_column(
                column, justify="right" if column in ("port", "pid", "RSS MB") else "left"
            )
        total = 0
        for row in testbed.status():
            total += row.rss
            health = (
                "[green]up[/green]"
                if row.healthy
                else ("[yellow]no answer[/yellow]" if row.pid else "[red]down[/red]")
            )
            table.add_row(
                row.site,
                row.service,
                str(row.port or ""),
                str(row.pid or ""),
                health,
                f"{row.rss / 2**20:.0f}" if row.rss else "",
            )
        for broker in testbed.brokers:
            state = "[green]up[/green]" if broker.running() else "[red]down[/red]"
            table.add_row("*", "rabbitmq", str(broker.port), "", state, "")
        _out.print(table)
        _out.print(
            f"total RSS {total / 2**30:.2f} GiB; OS_CLIENT_CONFIG_FILE={testbed.clouds_yaml}"
        )


@app.command()
def down(
    state_dir: StateDir = DEFAULT_STATE,
    purge: Annotated[bool, typer.Option(help="Also delete the state folder.")] = False,
) -> None:
    """Stop every process the testbed started (by PID); keep the state unless --purge."""
    with _clean_errors():
        testbed = Testbed.from_state(state_dir)
        started = time.monotonic()
        stopped = testbed.down(purge=purge)
        if testbed.wan_state is not None and (testbed.wan_state / "state.json").exists():
            from edgescope.testbed.wan import Wan

            Wan.attach(testbed.wan_state).down()
            _out.print("WAN namespaces removed")
        count = sum(len(v) for v in stopped.values())
        _out.print(
            f"stopped {count} processes in {time.monotonic() - started:.0f} s"
            + ("; state deleted" if purge else f"; state kept in {testbed.state_dir}")
        )


@app.command()
def join(
    site: Annotated[str, typer.Argument(help="The new site's name, e.g. Vancouver.")],
    seed: Annotated[str, typer.Option(help="The one site it knows, e.g. Paris.")],
    state_dir: StateDir = DEFAULT_STATE,
    topology: Annotated[
        str,
        typer.Option(
            help="On a WAN testbed: the topology file naming the site and its "
            "links, or 'default' (the shipped one)."
        ),
    ] = "default",
) -> None:
    """Add SITE to the running testbed knowing one peer: no other site's config changes;
    every site's directory admits it within a few gossip rounds."""
    with _clean_errors():
        testbed = Testbed.from_state(state_dir)
        address = None
        if testbed.wan_state is not None:
            from edgescope.testbed.wan import Wan, load_topology

            wan = Wan.attach(testbed.wan_state)
            path = None if topology == "default" else Path(topology)
            wan.add_sites(load_topology(path, sites=[*wan.topology.names, site]))
            address = (wan.site_address(site), tuple(wan.exec_prefix(site)))
        started = time.monotonic()
        result = testbed.join(
            site, seed, address, lambda name, message: _err.print(f"{name}: {message}")
        )
        _out.print(
            f"{site} joined ({result['kind']}, {time.monotonic() - started:.0f} s) knowing "
            f"{seed}; the other sites learn it from their directories"
        )


@app.command()
def leave(
    site: Annotated[str, typer.Argument(help="A site that joined, e.g. Vancouver.")],
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """SITE leaves: the sites it knows are told (a signed entry), its processes stop."""
    with _clean_errors():
        testbed = Testbed.from_state(state_dir)
        stopped = testbed.leave(site)
        if testbed.wan_state is not None:
            from edgescope.testbed.wan import Wan

            Wan.attach(testbed.wan_state).remove_site(site)
        _out.print(f"{site} left ({len(stopped)} processes stopped)")


@app.command()
def logs(
    site: Annotated[str, typer.Argument(help="Site name, e.g. Paris.")],
    service: Annotated[str, typer.Argument(help=f"One of: {', '.join(SERVICES)}.")],
    state_dir: StateDir = DEFAULT_STATE,
    lines: Annotated[int, typer.Option("--lines", "-n", help="Lines from the end.")] = 50,
) -> None:
    """Print the end of one service's log (its path comes first)."""
    with _clean_errors():
        testbed = Testbed.from_state(state_dir)
        plan = testbed.site(site).plan
        path = plan.log_path(check_service(service))
        _out.print(f"[dim]{path}[/dim]")
        if path.exists():
            with path.open("rb") as log:
                log.seek(max(0, os.path.getsize(path) - 200 * lines))
                tail = log.read().decode(errors="replace").splitlines()[-lines:]
            typer.echo("\n".join(tail))  # raw: rich would re-wrap the log lines


@app.command()
def plug(
    site: Annotated[str, typer.Argument(help="Site name, e.g. Paris.")],
    port: Annotated[str, typer.Argument(help="The neutron port's id.")],
    mac: Annotated[str, typer.Option(help="The port's MAC address.")] = "",
    server: Annotated[str, typer.Option(help="The id of the server the port is for.")] = "",
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Plug PORT into SITE's switch as os-vif would on a real hypervisor (nova's fake driver
    plugs nothing): ovn-controller claims it and neutron marks it ACTIVE."""
    with _clean_errors():
        Testbed.from_state(state_dir).site(site).backends.plug(port, mac, server)
        _out.print(f"port {port} plugged into {site}'s br-int")


@app.command()
def env(state_dir: StateDir = DEFAULT_STATE) -> None:
    """Print the shell line that makes `openstack --os-cloud SITE` find the testbed."""
    with _clean_errors():
        testbed = Testbed.from_state(state_dir)
        for key, value in testbed.env().items():
            typer.echo(f"export {key}={value}")


try:
    from edgescope.cli.wan import register_commands
except ImportError:  # the WAN part is optional
    pass
else:
    register_commands(app)
