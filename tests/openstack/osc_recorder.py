"""Helpers for the OSC plugin tests: the recorder's state and a non-blocking CLI runner."""

from __future__ import annotations

from dataclasses import dataclass, field

from osc_cli import OPENSTACK, CliResult, run_openstack

__all__ = ["OPENSTACK", "CliResult", "Recorded", "Recorder", "run_openstack"]


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Recorder:
    url: str
    requests: list[Recorded] = field(default_factory=list)


def token_options(endpoint: str) -> list[str]:
    """The CLI's global options for ``admin_token`` auth: token ``tok123`` sent straight to
    ``endpoint``, no Keystone needed."""
    return ["--os-auth-type", "admin_token", "--os-token", "tok123", "--os-endpoint", endpoint]


def paris_options(endpoint: str) -> list[str]:
    """:func:`token_options` in region Paris, a scope naming Paris and Corte allowed."""
    region = ["--os-region-name", "Paris", "--os-scope-sites", "Paris,Corte"]
    return [*token_options(endpoint), *region]
