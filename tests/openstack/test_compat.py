"""The one OSC patch: fails loudly when python-openstackclient / osc-lib move what it relies on."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from osc_lib import clientmanager

from edgescope.openstack import _compat
from openstack import config as os_config


@pytest.fixture
def unpatched_setup_auth(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``ClientManager.setup_auth`` as osc-lib ships it for the test; whatever was there before
    (the plugin's own wrapper, if ``osc_plugin`` was imported) comes back afterwards."""
    original = inspect.unwrap(clientmanager.ClientManager.setup_auth)
    monkeypatch.setattr(clientmanager.ClientManager, "setup_auth", original)
    yield


def client_manager() -> Any:
    """A real ClientManager for a password cloud; ``setup_auth`` builds its session and sends
    nothing, so the auth URL needs no server."""
    cloud = os_config.OpenStackConfig(load_yaml_config=False, load_envvars=False).get_one(
        auth_type="password",
        region_name="Paris",
        auth={
            "auth_url": "http://127.0.0.1:9/identity/v3",
            "username": "alice",
            "password": "secret",
            "project_name": "demo",
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
    )
    return clientmanager.ClientManager(cli_options=cloud, api_version={})


def test_upstream_still_builds_the_session_in_setup_auth() -> None:
    assert _compat.check_upstream() == []


# openstacksdk warns about InfluxDB whenever it builds a CloudRegion, configured or not.
@pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK60Warning")
@pytest.mark.usefixtures("unpatched_setup_auth")
def test_install_is_idempotent_and_calls_back_once_per_setup() -> None:
    seen: list[tuple[Any, Any]] = []
    assert not _compat.is_installed()
    _compat.install(lambda manager: seen.append((manager, manager.session)))
    first = clientmanager.ClientManager.setup_auth
    _compat.install(lambda manager: seen.append((manager, "second callback")))
    assert clientmanager.ClientManager.setup_auth is first and _compat.is_installed()

    manager = client_manager()
    manager.setup_auth()
    manager.setup_auth()  # already set up: osc-lib returns at once, no second callback
    assert seen == [(manager, manager.session)] and manager.session is not None

    other = client_manager()
    other.setup_auth()
    assert [entry[0] for entry in seen] == [manager, other]
