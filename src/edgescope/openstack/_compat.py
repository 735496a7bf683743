"""The one patch edgescope makes to OpenStackClient: run a callback when OSC builds its session.

Why a patch: OSC offers plugins ``build_option_parser`` (start-up) and ``make_client`` (only
when the plugin's own API is used), but no hook between "options parsed" and "first request".
``osc_lib.clientmanager.ClientManager.setup_auth`` is exactly that point: it builds the
keystoneauth session (shared with the SDK connection) and sends nothing; the shell calls it in
``prepare_to_run_command`` right before the first request (the token request).

:func:`check_upstream` states every upstream fact this relies on; ``tests/openstack/
test_compat.py`` runs it, so an OSC release that moves things fails loudly, not silently.

    >>> install(lambda client_manager: print(client_manager.session))
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from osc_lib import clientmanager

SetupCallback = Callable[[Any], None]

_PATCHED_MARK = "_edgescope_wrapped"


def install(callback: SetupCallback) -> None:
    """Call ``callback(client_manager)`` each time ``setup_auth`` completes. Idempotent."""
    original = clientmanager.ClientManager.setup_auth
    if getattr(original, _PATCHED_MARK, False):
        return

    @functools.wraps(original)
    def setup_auth(self: Any) -> None:
        already_done = bool(getattr(self, "_auth_setup_completed", False))
        original(self)
        if not already_done:
            callback(self)

    setattr(setup_auth, _PATCHED_MARK, True)
    clientmanager.ClientManager.setup_auth = setup_auth  # type: ignore[method-assign]


def is_installed() -> bool:
    return bool(getattr(clientmanager.ClientManager.setup_auth, _PATCHED_MARK, False))


def check_upstream() -> list[str]:
    """Every upstream assumption that no longer holds (empty when all is well)."""
    problems: list[str] = []
    setup_auth = getattr(clientmanager.ClientManager, "setup_auth", None)
    if setup_auth is None:
        return ["osc_lib.clientmanager.ClientManager.setup_auth is gone"]
    source = inspect.getsource(inspect.unwrap(setup_auth))
    for needle, why in (
        ("self.session = self._cli_options.get_session()", "the session is built in setup_auth"),
        ("connection.Connection(config=self._cli_options)", "the SDK shares that session"),
        ("self._auth_setup_completed = True", "setup_auth marks itself done"),
    ):
        if needle not in source:
            problems.append(f"setup_auth changed: expected {needle!r} ({why})")
    from osc_lib import shell

    run_prep = inspect.getsource(shell.OpenStackShell.prepare_to_run_command)
    if "self.client_manager.setup_auth()" not in run_prep:
        problems.append("prepare_to_run_command no longer calls setup_auth before the command")
    return problems
