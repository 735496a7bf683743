"""ci_tiers.py in a pytest run of its own (pytester): skips fail under CI, the tiers count."""

from __future__ import annotations

import json

import pytest

import ci_tiers

pytest_plugins = ["pytester"]

MARKERS = """
[pytest]
asyncio_default_fixture_loop_scope = function
markers =
    testbed: t
    wan: w
    mariadb: m
"""

SUITE = """
import pytest

def test_fast_passes(): pass

def test_fast_skips(): pytest.skip("no haproxy here")

@pytest.mark.xfail(reason="known", strict=True)
def test_fast_xfails(): assert False

@pytest.mark.testbed
def test_testbed_passes(): pass

@pytest.mark.testbed
@pytest.mark.skipif(True, reason="rabbitmq-server is not installed")
def test_testbed_skips(): pass

@pytest.mark.wan
def test_wan_fails(): assert False

@pytest.mark.testbed
@pytest.mark.wan
def test_both_passes(): pass

@pytest.mark.mariadb
def test_mariadb_passes(): pass

@pytest.fixture
def broken():
    yield
    raise RuntimeError("teardown")

def test_fast_teardown_error(broken): pass
"""


def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, object]]:
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.delenv("EDGESCOPE_ARTIFACTS", raising=False)  # the document lands in pytester's
    pytester.makeini(MARKERS)
    pytester.makepyfile(test_suite=SUITE)
    try:
        result = pytester.runpytest("-p", "no:cacheprovider", *args, plugins=[ci_tiers])
    finally:
        monkeypatch.undo()
    document = json.loads((pytester.path / "artifacts" / "test-tiers.json").read_text())
    return result, document


def test_without_ci_a_skip_stays_a_skip(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    result, document = run(pytester)
    result.assert_outcomes(passed=5, skipped=2, failed=1, xfailed=1, errors=1)
    assert document["ci"] is False
    assert document["tiers"] == {
        "fast": {"passed": 2, "failed": 1, "skipped": 1, "xfailed": 1, "deselected": 0},
        "testbed": {"passed": 1, "failed": 0, "skipped": 1, "xfailed": 0, "deselected": 0},
        "wan": {"passed": 0, "failed": 1, "skipped": 0, "xfailed": 0, "deselected": 0},
        "testbed+wan": {"passed": 1, "failed": 0, "skipped": 0, "xfailed": 0, "deselected": 0},
    }
    assert document["mariadb"]["passed"] == 1
    assert document["exitstatus"] == 1
    # the table comes last, after pytest's own summary line
    result.stdout.re_match_lines([r"=+ 1 failed, 5 passed", r"=+ tests per tier =+"])
    result.stdout.re_match_lines([r"fast\s+2\s+1\s+1\s+1\s+0", r"\(mariadb\)\s+1\s+0"])


def test_under_ci_a_skip_fails_with_its_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    result, document = run(pytester)
    # the xfail stays an xfail; both skips are failures (at setup or in the test: errors)
    result.assert_outcomes(passed=5, failed=2, xfailed=1, errors=2)
    for reason in ("no haproxy here", "rabbitmq-server is not installed"):
        result.stdout.fnmatch_lines([f"*skipped under CI=true, which allows no skip: {reason} (*"])
    assert document["ci"] is True
    tiers = document["tiers"]
    assert isinstance(tiers, dict)
    assert [tiers[name]["skipped"] for name in ci_tiers.TIERS] == [0, 0, 0, 0]
    assert tiers["fast"]["failed"] == 2 and tiers["testbed"]["failed"] == 1


def test_under_ci_a_module_level_skip_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    pytester.makeini(MARKERS)
    pytester.makepyfile(
        test_gone='import pytest\npytest.importorskip("no_such_module_here")\ndef test_x(): pass'
    )
    result = pytester.runpytest("-p", "no:cacheprovider", plugins=[ci_tiers])
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*skipped under CI=true*no_such_module_here*"])


def test_ci_false_is_not_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expected in (("true", True), ("1", True), ("false", False), ("", False)):
        monkeypatch.setenv("CI", value)
        assert ci_tiers.under_ci() is expected


def test_deselected_tests_are_counted_in_their_tier(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    _, document = run(pytester, "-m", "not testbed and not wan")
    tiers = document["tiers"]
    assert isinstance(tiers, dict)
    assert tiers["testbed"] == {
        "passed": 0,
        "failed": 0,
        "skipped": 0,
        "xfailed": 0,
        "deselected": 2,
    }
    assert tiers["wan"]["deselected"] == 1 and tiers["testbed+wan"]["deselected"] == 1
    assert tiers["fast"]["deselected"] == 0 and document["markexpr"] == "not testbed and not wan"
