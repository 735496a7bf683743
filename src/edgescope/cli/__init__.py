"""The ``edgescope`` command: a thin typer app; each command group lives in its own module.

edgescope scope check|explain     (cli/scope.py)
edgescope proxy run|status        (cli/proxy.py)
edgescope testbed up|down|...     (cli/testbed.py)
edgescope wan up|down|partition   (cli/wan.py)
edgescope demo                    (cli/demo.py)
edgescope console                 (cli/console.py)
edgescope replicas|directory ... (cli/replicas.py, cli/directory.py)
edgescope deploy haproxy|systemd  (cli/deploy.py)
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="edgescope",
    help="Collaboration by composition for independent edge OpenStack sites.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# (module, command-group name): each module defines ``app`` (a typer.Typer) or ``register(app)``.
_GROUPS = ("scope", "proxy", "testbed", "wan", "demo", "console", "replicas", "directory", "deploy")


def _load_groups() -> None:
    for name in _GROUPS:
        try:
            module = importlib.import_module(f"edgescope.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"edgescope.cli.{name}":
                continue  # this command group is not built yet
            raise
        if hasattr(module, "register"):
            module.register(app)
        else:
            app.add_typer(module.app, name=name)


_load_groups()


def main() -> None:
    """Console-script entry point."""
    app()
