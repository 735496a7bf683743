"""OpenStackClient plugin: the global option ``--os-scope SCOPE`` (env ``OS_SCOPE``).

Registered through OSC's documented ``openstack.cli.extension`` entry point (pyproject.toml).
OSC calls :func:`build_option_parser` at start-up; this adds ``--os-scope`` and
``--os-scope-sites`` and asks ``_compat.py`` to call :func:`on_session_ready` once OSC has built
its keystoneauth session. There the scope is parsed and checked against the sites the client
knows (a bad scope stops the command with the caret message before any request), completed with
``identity: <own site>``, and attached to every request (``session.py``).
``--os-scope-mode eventual`` (env ``OS_SCOPE_MODE``) adds ``X-Scope-Mode: eventual`` to
every request (replicated writes may then go through a partition, see docs/semantics.md);
``--os-scope-mode partial`` adds ``X-Scope-Mode: partial``: an ``&`` read answers what the
sites that could answer have, and a warning on stderr names the others (the exit status
stays 0: the command did show an answer; scripts read the warning line).

    $ openstack --os-cloud Paris --os-scope '{nova: Paris, glance: Corte}' server create ...
    $ OS_SCOPE='{nova: Paris & Corte}' openstack --os-cloud Paris server list
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from osc_lib import exceptions

from edgescope.errors import ScopeError
from edgescope.openstack import _compat

if TYPE_CHECKING:
    from edgescope.openstack.session import OriginRecorder

API_NAME = "edgescope"
API_VERSION_OPTION = "os_edgescope_api_version"
DEFAULT_API_VERSION = "1"
API_VERSIONS = ("1",)

ORIGINS_ATTRIBUTE = "_edgescope_origins"
"""Where the client manager keeps the :class:`OriginRecorder` of the current command."""


@dataclass(frozen=True, slots=True)
class ScopeOption:
    """The raw ``--os-scope`` text, deliberately not a ``str``.

    openstacksdk's config loader runs ``value.format(**config)`` on every string option,
    which a scope's braces would break (``KeyError: 'nova'``); objects without ``format``
    are left alone.
    """

    text: str


class BadScope(exceptions.CommandError):
    """``--os-scope`` is invalid; the message carries the caret context."""


def build_option_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the global options (OSC calls this once, before parsing the command line)."""
    parser.add_argument(
        "--os-scope",
        metavar="<scope>",
        dest="scope",
        type=ScopeOption,
        default=os.environ.get("OS_SCOPE") or None,
        help="edgescope scope: which site serves each service, e.g. "
        "'{nova: Paris, glance: Corte | Marseille}' (Env: OS_SCOPE)",
    )
    parser.add_argument(
        "--os-scope-sites",
        metavar="<site,site,...>",
        dest="scope_sites",
        default=os.environ.get("OS_SCOPE_SITES") or None,
        help="sites a scope may name; default: the clouds and regions of clouds.yaml "
        "(Env: OS_SCOPE_SITES)",
    )
    parser.add_argument(
        "--os-scope-mode",
        metavar="<strict|eventual|partial>",
        dest="scope_mode",
        type=scope_mode,
        default=os.environ.get("OS_SCOPE_MODE") or STRICT,
        help="'eventual' lets an & write go through while a member site is unreachable "
        "(queued and replayed later); 'partial' lets an & read answer from the sites that "
        "could, with a warning naming the others; default 'strict' (Env: OS_SCOPE_MODE)",
    )
    _compat.install(on_session_ready)
    return parser


STRICT, EVENTUAL, PARTIAL = "strict", "eventual", "partial"
MODES = (STRICT, EVENTUAL, PARTIAL)


def scope_mode(text: str) -> str:
    """``--os-scope-mode``: strict, eventual or partial (any case); argparse reports anything
    else."""
    mode = text.strip().lower()
    if mode not in MODES:
        raise argparse.ArgumentTypeError(f"expected strict, eventual or partial, got {text!r}")
    return mode


def on_session_ready(client_manager: Any) -> None:
    """Check ``--os-scope`` and attach it to the session; raise :class:`BadScope` if invalid."""
    # Imported here so that a broken scope-lang never breaks every other `openstack` command.
    from edgescope.openstack.options import parse_site_list, resolve_scope
    from edgescope.openstack.session import attach_mode, attach_scope

    config: dict[str, Any] = client_manager._cli_options.config
    mode = config.get("scope_mode")
    if mode in (EVENTUAL, PARTIAL):
        attach_mode(client_manager.session, mode)
    option = config.get("scope")
    if not isinstance(option, ScopeOption) or not option.text.strip():
        return
    own_site = client_manager.region_name or getattr(client_manager._cli_options, "name", None)
    sites = parse_site_list(config.get("scope_sites")) or _clouds_yaml_sites(client_manager)
    try:
        scope = resolve_scope(option.text, known_sites=sites, own_site=own_site)
    except ScopeError as err:
        raise BadScope(f"invalid --os-scope: {err.render()}") from None
    recorder = attach_scope(client_manager.session, scope, own_site)
    setattr(client_manager, ORIGINS_ATTRIBUTE, recorder)


def _clouds_yaml_sites(client_manager: Any) -> frozenset[str]:
    from edgescope.openstack.options import known_sites_from_clouds

    openstack_config = getattr(client_manager._cli_options, "_openstack_config", None)
    clouds = getattr(openstack_config, "cloud_config", {}).get("clouds", {})
    return known_sites_from_clouds(clouds)


def make_client(instance: Any) -> OriginRecorder | None:
    """``client_manager.edgescope``: the origins learnt during this command (or None)."""
    recorder: OriginRecorder | None = getattr(instance, ORIGINS_ATTRIBUTE, None)
    return recorder


def check_api_version(version: str) -> bool:
    """There is only one version; tell OSC to skip its own version check."""
    return True
