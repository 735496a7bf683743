"""early_testbed.py's choice: start the loopback testbed early only when a session needs it,
not from its first test (pytester collects real test files; nothing is started here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from early_testbed import wanted

pytest_plugins = ["pytester"]

CONFTEST = """
import pytest

def pytest_configure(config):
    config.addinivalue_line("markers", "testbed: needs the testbed")
    config.addinivalue_line("markers", "wan: needs the WAN")

@pytest.fixture(scope="session")
def testbed():
    yield
"""
PLAIN = "def test_plain(): pass\n"
LOOPBACK = "import pytest\npytestmark = pytest.mark.testbed\ndef test_on_bed(testbed): pass\n"
UNMARKED = "def test_fake_bed(testbed): pass\n"  # like test_shared_beds' own fake fixture
WAN = (
    "import pytest\npytestmark = [pytest.mark.testbed, pytest.mark.wan]\n"
    "def test_on_wan(testbed): pass\n"
)


def _items(pytester: pytest.Pytester, **files: str) -> list[pytest.Item]:
    pytester.syspathinsert(Path(__file__).parent)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(**files)
    items, _ = pytester.inline_genitems()
    return items


def test_fast_tests_then_the_testbed_start_it_early(pytester: pytest.Pytester) -> None:
    assert wanted(_items(pytester, test_a=PLAIN, test_b=LOOPBACK))


def test_a_session_without_the_testbed_starts_nothing(pytester: pytest.Pytester) -> None:
    assert not wanted(_items(pytester, test_a=PLAIN, test_b=UNMARKED, test_c=WAN))


def test_a_session_that_begins_on_the_testbed_starts_nothing_early(
    pytester: pytest.Pytester,
) -> None:
    assert not wanted(_items(pytester, test_a=LOOPBACK, test_b=PLAIN))


def test_an_empty_session_starts_nothing(pytester: pytest.Pytester) -> None:
    assert not wanted([])
