"""shared_beds.py in a pytest run of its own (pytester): each testbed's tests together, in
file order, and a testbed stopped right after its last test, its dependents' cleanup first."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = """
import pytest
from shared_beds import on_last_test

LOG = []

@pytest.fixture(scope="session")
def wtb():
    LOG.append("wtb up")
    stop = on_last_test("wtb", lambda: LOG.append("wtb down"))
    yield
    stop()

@pytest.fixture(scope="session")
def testbed():
    LOG.append("testbed up")
    stop = on_last_test("testbed", lambda: LOG.append("testbed down"))
    yield
    stop()

@pytest.fixture(scope="session")
def ctx(testbed):
    cleanup = on_last_test("testbed", lambda: LOG.append("ctx cleanup"))
    yield
    cleanup()

def pytest_runtest_call(item):
    LOG.append(item.name)

def pytest_unconfigure(config):
    (config.rootpath / "log.txt").write_text("\\n".join(LOG))
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.syspathinsert(Path(__file__).parent)  # shared_beds.py
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_a_wan="def test_a1(wtb): pass\ndef test_a2(): pass",
        test_b_plain="def test_b1(): pass",
        test_c_loopback="def test_c1(ctx): pass\ndef test_c2(testbed): pass",
        test_d_plain="def test_d1(): pass",
    )
    return pytester


def test_order_and_early_stop(suite: pytest.Pytester) -> None:
    result = suite.runpytest("-p", "shared_beds", "-q")
    result.assert_outcomes(passed=6)
    log = (suite.path / "log.txt").read_text().splitlines()
    assert log == [
        "test_b1",
        "test_d1",
        "testbed up",
        "test_c1",
        "test_c2",
        "ctx cleanup",  # the dependent's cleanup, while the testbed still runs
        "testbed down",  # right after its last test, before the WAN testbed starts
        "wtb up",
        "test_a1",
        "wtb down",  # after the last test that needs it
        "test_a2",  # its module moved whole
    ]


def test_a_session_that_stops_early_still_stops_each_bed_once(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_c_loopback="def test_c1(ctx): assert False\ndef test_c2(testbed): pass")
    result = suite.runpytest("-p", "shared_beds", "-q", "-x")
    result.assert_outcomes(passed=2, failed=1)
    log = (suite.path / "log.txt").read_text().splitlines()
    assert log.count("testbed down") == 1 and log.count("ctx cleanup") == 1
    assert log.index("ctx cleanup") < log.index("testbed down")
    assert "wtb up" not in log


def test_deselected_tests_do_not_hold_a_bed(suite: pytest.Pytester) -> None:
    result = suite.runpytest("-p", "shared_beds", "-q", "-k", "not c2")
    result.assert_outcomes(passed=5, deselected=1)
    log = (suite.path / "log.txt").read_text().splitlines()
    assert log.index("testbed down") == log.index("test_c1") + 2
