"""A ``Site`` column for OSC list commands, from the origins the proxy put on merged ``&`` items.

A cliff command hook (documented: entry point group ``openstack.cli.<command_name>``, e.g.
``openstack.cli.server_list``). cliff hands ``after`` the ``(column_names, rows)`` a display
command produced; when the command ran under an ``&`` scope, the proxy annotated each merged item
with its origin site, ``session.py`` recorded id -> site, and this hook adds the column, so
``-c Site``, ``-f json`` and ``-f value`` all see it.

    $ openstack server list --os-scope '{nova: Paris & Corte}' -c Name -c Site
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import Any

from cliff import hooks

SITE_COLUMN = "Site"


def add_site_column(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], sites_by_id: dict[str, str]
) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """Append a ``Site`` column, looked up by the ``ID`` column. Pure."""
    id_index = next((i for i, name in enumerate(columns) if name.lower() == "id"), None)
    materialized = [tuple(row) for row in rows]
    if id_index is None or SITE_COLUMN in columns:
        return tuple(columns), materialized
    return (
        (*columns, SITE_COLUMN),
        [(*row, sites_by_id.get(str(row[id_index]), "")) for row in materialized],
    )


class SiteColumnHook(hooks.CommandHook):
    """Adds ``Site`` to the output of list commands run under an ``&`` scope."""

    def get_parser(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        return parser

    def get_epilog(self) -> str:
        return ""

    def before(self, parsed_args: argparse.Namespace) -> argparse.Namespace:
        return parsed_args

    def after(self, parsed_args: argparse.Namespace, return_code: Any) -> Any:
        recorder = _recorder(self.cmd)
        is_display = isinstance(return_code, tuple) and len(return_code) == 2
        if recorder is None or not is_display:
            return return_code
        columns, rows = return_code
        # Some listers (network list) return a generator that has not sent its request yet:
        # read it first, so the recorder has seen the merged answer.
        rows = [tuple(row) for row in rows]
        if not recorder.sites_by_id:
            return columns, rows
        return add_site_column(columns, rows, recorder.sites_by_id)


def _recorder(cmd: Any) -> Any:
    from edgescope.openstack.osc_plugin import ORIGINS_ATTRIBUTE
    from edgescope.openstack.session import OriginRecorder

    client_manager = getattr(getattr(cmd, "app", None), "client_manager", None)
    recorder = getattr(client_manager, ORIGINS_ATTRIBUTE, None)
    return recorder if isinstance(recorder, OriginRecorder) else None
