"""``edgescope deploy haproxy|systemd``: what an operator adds to a real site, printed from the
site's proxy config (thin: the text comes from :mod:`edgescope.deploy`).

    edgescope deploy haproxy --config /etc/edgescope/paris.toml              # [haproxy] flavor
    edgescope deploy haproxy --config paris.toml --flavor kolla --part frontend
    edgescope deploy systemd --config /etc/edgescope/paris.toml \
        > /etc/systemd/system/edgescope-proxy.service
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from edgescope.cli.extensions import TABLES
from edgescope.deploy import haproxy, systemd
from edgescope.errors import EdgescopeError
from edgescope.proxy.config import load_config

app = typer.Typer(
    name="deploy",
    help="Snippets for a real site: HAProxy fast path, systemd unit.",
    no_args_is_help=True,
)
ConfigOption = Annotated[Path, typer.Option("--config", help="The site's proxy config (TOML).")]
PARTS = ("all", "frontend", "backends")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


@app.command("haproxy")
def haproxy_command(
    config: ConfigOption,
    flavor: Annotated[
        str | None, typer.Option(help="kolla, openstack-ansible or plain (default: [haproxy]).")
    ] = None,
    on_down: Annotated[
        str | None,
        typer.Option("--on-edgescope-down", help="closed (503) or open (served locally)."),
    ] = None,
    part: Annotated[
        str, typer.Option(help="all, frontend (the rules) or backends (edgescope's sections).")
    ] = "all",
) -> None:
    """The fast path: ACL lines for every HTTP frontend, and edgescope's backend sections."""
    try:
        site = load_config(config, extensions=TABLES)
        settings = haproxy.settings_of(site)
        if flavor is not None or on_down is not None:
            raw = dict(site.extension_tables.get("haproxy", {}))
            raw.update({k: v for k, v in (("flavor", flavor), ("on_edgescope_down", on_down)) if v})
            settings = haproxy.HaproxySettings.parse(raw)
        if part not in PARTS:
            raise _fail(f"--part {part!r}: valid choices are {', '.join(PARTS)}")
        paths = haproxy.plan_fast_path(site, settings)
    except EdgescopeError as exc:
        raise _fail(str(exc)) from None
    lines = haproxy.frontend_lines(paths, settings)
    if settings.flavor == "kolla":
        frontend = (
            "# /etc/kolla/globals.yml: the fast path in every HTTP frontend\n"
            + haproxy.kolla_globals(lines)
        )
        where = "/etc/kolla/config/haproxy/services.d/edgescope.cfg"
    elif settings.flavor == "openstack-ansible":
        frontend = (
            "# /etc/openstack_deploy/user_variables.yml: the fast path in every frontend\n"
            + haproxy.osa_variables(lines)
        )
        where = ""
    else:
        frontend = "# in every HTTP frontend of the site's services\n" + "\n".join(lines) + "\n"
        where = "haproxy.cfg, next to the frontends"
    if settings.flavor == "openstack-ansible":
        backends = (
            "# /etc/openstack_deploy/user_variables.yml: edgescope's backends\n"
            + haproxy.osa_services(site, paths, settings)
        )
    else:
        sections = haproxy.backend_sections(site, paths, settings)
        backends = f"# {where}: edgescope's backends\n{sections}"
    if part in ("all", "frontend"):
        typer.echo(frontend, nl=part == "all")
    if part in ("all", "backends"):
        typer.echo(backends.rstrip("\n"))


@app.command("systemd")
def systemd_command(
    config: ConfigOption,
    user: Annotated[str, typer.Option(help="The account the proxy runs as.")] = "edgescope",
    executable: Annotated[
        str | None, typer.Option(help="Path of the edgescope command (default: this one).")
    ] = None,
) -> None:
    """A systemd unit running ``edgescope proxy run --config CONFIG`` (restart, hardening)."""
    try:
        site = load_config(config, extensions=TABLES)
    except EdgescopeError as exc:
        raise _fail(str(exc)) from None
    raw = site.extension_tables.get("replicas", {})
    state = raw.get("state_dir")
    state_dir = None
    if isinstance(state, str):
        state_dir = (site.base_dir or Path.cwd()) / state  # an absolute state_dir stays as is
    command = executable or shutil.which("edgescope") or "/usr/local/bin/edgescope"
    typer.echo(
        systemd.unit(config.absolute(), command, user=user, state_dir=state_dir, config=site),
        nl=False,
    )
