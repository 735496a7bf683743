"""``edgescope wan ...`` and the WAN commands of ``edgescope testbed``: thin wrappers on ``Wan``.

    edgescope wan up [--topology FILE] [--sites Paris,Corte,Marseille]
    edgescope wan partition Paris Corte      |  edgescope wan partition --isolate Corte
    edgescope wan heal [Paris [Corte]]
    edgescope wan link Paris Corte --rtt 100 --loss 0.3
    edgescope wan status [--json]
    edgescope wan down

Here ``--wan-state`` is the WAN's own state folder (default ``$EDGESCOPE_WAN_STATE`` or
``/run/edgescope/wan``). ``register_commands(testbed_app)`` adds ``partition``, ``heal``,
``wan-link`` and ``wan-status`` to the testbed group, where ``--state-dir`` is the testbed's
state folder, as for every testbed command; the WAN is the one that testbed recorded at
``testbed up --wan``:

    edgescope testbed partition Paris Corte --state-dir state-wan
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgescope.errors import ConfigError, EdgescopeError
from edgescope.testbed.layout import TestbedUsageError
from edgescope.testbed.wan import DEFAULT_PREFIX, DEFAULT_STATE_DIR, Wan, load_topology

app = typer.Typer(
    name="wan", help="The emulated edge WAN (network namespaces).", no_args_is_help=True
)
_out = Console()
_err = Console(stderr=True, soft_wrap=True)

StateDir = Annotated[
    Path,
    typer.Option("--wan-state", envvar="EDGESCOPE_WAN_STATE", help="Where the WAN state lives."),
]
TestbedStateDir = Annotated[
    Path,
    typer.Option(
        "--state-dir",
        envvar="EDGESCOPE_STATE_DIR",
        help="The testbed's state folder (as for `testbed up`); its WAN is found from there.",
    ),
]
TESTBED_STATE = Path("state")
"""The testbed's default state folder (as in cli/testbed.py)."""


@contextmanager
def _clean_errors() -> Iterator[None]:
    """Render edgescope errors as one line: exit 2 for bad input, 1 for system failures."""
    try:
        yield
    except (ConfigError, TestbedUsageError) as exc:
        _err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    except EdgescopeError as exc:
        _err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2 if "no WAN is up" in str(exc) else 1) from None


def _timed(action: Callable[[], None]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


@app.command()
def up(
    topology: Annotated[
        Path | None, typer.Option(help="Topology TOML (default: the shipped Renater one).")
    ] = None,
    sites: Annotated[
        str | None, typer.Option(help="Comma-separated sites to bring up (default: non-optional).")
    ] = None,
    prefix: Annotated[
        str, typer.Option(help="Namespace name prefix (default: $EDGESCOPE_WAN_PREFIX or es).")
    ] = DEFAULT_PREFIX,
    backend: Annotated[str, typer.Option(help="auto, nfqueue or netem.")] = "auto",
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Create the site namespaces, the bridge and the delays."""
    with _clean_errors():
        chosen = [s.strip() for s in sites.split(",") if s.strip()] if sites else None
        topo = load_topology(topology, sites=chosen)
        start = time.perf_counter()
        wan = Wan.up(topo, state_dir, prefix=prefix, backend=backend)  # type: ignore[arg-type]
        took = (time.perf_counter() - start) * 1000
        _out.print(f"WAN up in {took:.0f} ms ({wan.backend} delays); sites:")
        for site in topo.sites:
            _out.print(
                f"  {site.name:<10} {site.address:<12} {' '.join(wan.exec_prefix(site.name))}"
            )


@app.command()
def down(state_dir: StateDir = DEFAULT_STATE_DIR) -> None:
    """Stop the delayer and delete every namespace and rule of the WAN."""
    with _clean_errors():
        if not (state_dir / "state.json").exists():
            _out.print("no WAN is up")
            return
        took = _timed(Wan.attach(state_dir).down)
        _out.print(f"WAN down in {took:.0f} ms")


@app.command()
def partition(
    site_a: Annotated[str | None, typer.Argument(metavar="[A]")] = None,
    site_b: Annotated[str | None, typer.Argument(metavar="[B]")] = None,
    isolate: Annotated[str | None, typer.Option(help="Cut this site from all others.")] = None,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Cut the link between A and B, or --isolate one site from all others."""
    with _clean_errors():
        wan = Wan.attach(state_dir)
        if isolate is not None and site_a is None:
            took = _timed(lambda: wan.isolate(isolate))
            what = f"{wan.topology.site(isolate).name} isolated"
        elif isolate is None and site_a is not None and site_b is not None:
            took = _timed(lambda: wan.partition(site_a, site_b))
            what = f"{wan.topology.site(site_a).name}–{wan.topology.site(site_b).name} cut"
        else:
            raise ConfigError("name two sites (partition A B) or one with --isolate SITE")
        _out.print(f"{what} in {took:.1f} ms")


@app.command()
def heal(
    site_a: Annotated[str | None, typer.Argument(metavar="[A]")] = None,
    site_b: Annotated[str | None, typer.Argument(metavar="[B]")] = None,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Restore all links, the links of A, or the A–B link."""
    with _clean_errors():
        wan = Wan.attach(state_dir)
        took = _timed(lambda: wan.heal(site_a, site_b))
        left = ", ".join("–".join(sorted(c)) for c in wan.cuts) or "none"
        _out.print(f"healed in {took:.1f} ms; cuts left: {left}")


@app.command()
def link(
    site_a: Annotated[str, typer.Argument(metavar="A")],
    site_b: Annotated[str, typer.Argument(metavar="B")],
    rtt: Annotated[float | None, typer.Option(help="Round-trip time, ms.")] = None,
    jitter: Annotated[float | None, typer.Option(help="One-way jitter, ms.")] = None,
    loss: Annotated[float | None, typer.Option(help="Loss per direction, 0..1.")] = None,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Change the RTT, jitter or loss of the A–B link while the WAN runs."""
    with _clean_errors():
        wan = Wan.attach(state_dir)
        wan.set_link(site_a, site_b, rtt_ms=rtt, jitter_ms=jitter, loss=loss)
        lk = wan.topology.link(site_a, site_b)
        _out.print(
            f"{lk.a}–{lk.b}: rtt {lk.rtt_ms:g} ms, jitter {lk.jitter_ms:g} ms, loss {lk.loss:g}"
        )


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Sites, links, cuts and the delayer process of the running WAN."""
    with _clean_errors():
        st = Wan.attach(state_dir).status()
        if as_json:
            print(json.dumps(dataclasses.asdict(st), indent=1))
            return
        delayer = (
            "netem (kernel)"
            if st.backend == "netem"
            else (
                f"delayer pid {st.delayer_pid} ({'running' if st.delayer_alive else 'NOT RUNNING'})"
            )
        )
        _out.print(f"WAN prefix {st.prefix!r}, {delayer}")
        sites = Table("site", "namespace", "address", "present")
        for s in st.sites:
            sites.add_row(
                s["name"], s["namespace"], s["address"], "yes" if s["present"] else "[red]no[/red]"
            )
        links = Table("link", "rtt ms", "jitter ms", "loss", "state")
        for lk in st.links:
            state = "[red]cut[/red]" if lk["cut"] else "up"
            links.add_row(
                "–".join(lk["sites"]),
                f"{lk['rtt_ms']:g}",
                f"{lk['jitter_ms']:g}",
                f"{lk['loss']:g}",
                state,
            )
        _out.print(sites, links)


def wan_state_of_testbed(state_dir: Path) -> Path:
    """The WAN state folder that the testbed in ``state_dir`` was brought up on."""
    from edgescope.testbed import Testbed

    wan_state = Testbed.from_state(state_dir).wan_state
    if wan_state is None:
        raise ConfigError(f"the testbed in {state_dir} runs without a WAN (`testbed up --wan`)")
    return wan_state


def _testbed_wan(state_dir: Path) -> Path:
    with _clean_errors():
        return wan_state_of_testbed(state_dir)


def testbed_partition(
    site_a: Annotated[str | None, typer.Argument(metavar="[A]")] = None,
    site_b: Annotated[str | None, typer.Argument(metavar="[B]")] = None,
    isolate: Annotated[str | None, typer.Option(help="Cut this site from all others.")] = None,
    state_dir: TestbedStateDir = TESTBED_STATE,
) -> None:
    """Cut the link between A and B, or --isolate one site from all others."""
    partition(site_a, site_b, isolate, _testbed_wan(state_dir))


def testbed_heal(
    site_a: Annotated[str | None, typer.Argument(metavar="[A]")] = None,
    site_b: Annotated[str | None, typer.Argument(metavar="[B]")] = None,
    state_dir: TestbedStateDir = TESTBED_STATE,
) -> None:
    """Restore all links, the links of A, or the A–B link."""
    heal(site_a, site_b, _testbed_wan(state_dir))


def testbed_link(
    site_a: Annotated[str, typer.Argument(metavar="A")],
    site_b: Annotated[str, typer.Argument(metavar="B")],
    rtt: Annotated[float | None, typer.Option(help="Round-trip time, ms.")] = None,
    jitter: Annotated[float | None, typer.Option(help="One-way jitter, ms.")] = None,
    loss: Annotated[float | None, typer.Option(help="Loss per direction, 0..1.")] = None,
    state_dir: TestbedStateDir = TESTBED_STATE,
) -> None:
    """Change the RTT, jitter or loss of the A–B link while the WAN runs."""
    link(site_a, site_b, rtt, jitter, loss, _testbed_wan(state_dir))


def testbed_status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    state_dir: TestbedStateDir = TESTBED_STATE,
) -> None:
    """Sites, links, cuts and the delayer process of the testbed's WAN."""
    status(as_json, _testbed_wan(state_dir))


def register_commands(testbed_app: typer.Typer) -> None:
    """Add the WAN commands to the ``edgescope testbed`` group (``--state-dir``: the testbed's)."""
    testbed_app.command("partition")(testbed_partition)
    testbed_app.command("heal")(testbed_heal)
    testbed_app.command("wan-link")(testbed_link)
    testbed_app.command("wan-status")(testbed_status)
