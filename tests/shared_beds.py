"""The two OpenStack testbeds of a session never run at once: the tests that need each one run
together, and a testbed stops right after its last test instead of at the end of the session.

A session starts the loopback testbed (fixture ``testbed``) and the emulated-WAN one (``wtb``):
three OpenStack sites each, whose idle services alone use a fifth of a core. In file order their
tests interleave, so both stayed up from the first WAN test to the end (and the Swift and live
tests ran beside six idle sites). The order here: every other test first, in file order; then
the modules that need the loopback testbed; then those that need the WAN one. A module moves as
a whole (its own fixtures are set up once), in file order within its group.

A session fixture that started a testbed registers its stop (``on_last_test``); a fixture that
depends on it and must clean up while it runs (``ctx`` deletes its servers) registers after it,
and runs first. Each stop runs once: here after the testbed's last test, or in the fixture's
own teardown if the session ends earlier (``-x``, a keyboard interrupt).
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import pytest

BEDS = ("testbed", "wtb")
"""The fixtures of the shared testbeds, in the order their tests run."""


class Once:
    """A callable that runs ``action`` the first time it is called, and never again."""

    def __init__(self, action: Callable[[], object]) -> None:
        self._action: Callable[[], object] | None = action

    def __call__(self) -> None:
        action, self._action = self._action, None
        if action is not None:
            action()


_stops: dict[str, list[Once]] = {bed: [] for bed in BEDS}
_last: dict[str, str] = {}  # bed -> nodeid of the last test that needs it


def on_last_test(bed: str, action: Callable[[], object]) -> Once:
    """Run ``action`` after the last test that needs ``bed`` (later registrations run first);
    call the returned :class:`Once` in the fixture's teardown too."""
    once = Once(action)
    _stops[bed].append(once)
    return once


def _bed_of(item: pytest.Item) -> int:
    names = set(getattr(item, "fixturenames", ()))
    return max((i + 1 for i, bed in enumerate(BEDS) if bed in names), default=0)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    module_group: dict[object, int] = {}
    for item in items:
        key = item.module if isinstance(item, pytest.Function) else item.path
        module_group[key] = max(module_group.get(key, 0), _bed_of(item))

    def group(item: pytest.Item) -> int:
        return module_group[item.module if isinstance(item, pytest.Function) else item.path]

    items.sort(key=group)  # stable: file order within a group


def pytest_collection_finish(session: pytest.Session) -> None:
    _last.clear()
    for item in session.items:  # after deselection: only the tests that will run
        for bed in BEDS:
            if bed in getattr(item, "fixturenames", ()):
                _last[bed] = item.nodeid


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    yield
    for bed in BEDS:
        if _last.get(bed) == item.nodeid:
            for stop in reversed(_stops[bed]):
                stop()
