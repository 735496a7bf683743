"""The one OSC patch: fails loudly when python-openstackclient / osc-lib move what it relies on."""

from __future__ import annotations

from osc_lib import clientmanager

from edgescope.openstack import _compat


def test_upstream_still_builds_the_session_in_setup_auth() -> None:
    assert _compat.check_upstream() == []


def test_install_is_idempotent_and_calls_back_once_per_setup() -> None:
    seen: list[object] = []
    _compat.install(seen.append)
    first = clientmanager.ClientManager.setup_auth
    _compat.install(seen.append)
    assert clientmanager.ClientManager.setup_auth is first
    assert _compat.is_installed()
