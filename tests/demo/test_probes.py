"""How probes type ``openstack`` at a site and judge a failure (real subprocesses, no sites)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgescope.demo.matrix import probe
from edgescope.demo.probes import (
    Boots,
    ProbeError,
    Sites,
    _failure_detail,
    _failure_problems,
    last_line,
    run_probe,
    site_outcomes,
)
from edgescope.openstack.cli_runner import CliResult
from edgescope.replicas.registry import Registry

# A stand-in for `ip netns exec es-paris`: a real prefix command that reports what it was given.
ECHO_ARGV = ("sh", "-c", 'echo "$OS_CLIENT_CONFIG_FILE $*" >&2; exit 3', "sh")


def test_commands_run_behind_the_site_prefix_with_cloud_scope_and_clouds_yaml() -> None:
    sites = Sites(Path("/x/clouds.yaml"), {"Paris": ECHO_ARGV, "Corte": ()})
    result = sites.run("Paris", "server", "list", cloud="Paris", scope="{nova: Paris & Corte}")
    assert result.code == 3
    seen = result.stderr.strip()
    assert seen.startswith("/x/clouds.yaml ")
    assert seen.endswith("--os-cloud Paris --os-scope {nova: Paris & Corte} server list")
    assert result.command.startswith("sh -c ")
    assert sites.history == [result]


def test_a_hanging_command_is_cut_at_its_timeout() -> None:
    sites = Sites(Path("/x/clouds.yaml"), {"Paris": ("sh", "-c", "sleep 5", "sh")})
    result = sites.run("Paris", "server", "list", cloud="Paris", timeout=0.3)
    assert result.code == -1 and "timed out" in result.stderr


def test_site_outcomes_read_the_proxy_multi_site_error() -> None:
    message = (
        "Site Unreachable (HTTP 503): compute: 1 of 2 sites failed "
        "(Paris: 200 ok; Corte: unreachable (connect timeout after 2.0 s))"
    )
    assert site_outcomes(message) == {"Paris": "200 ok", "Corte": "unreachable"}
    assert site_outcomes("no sites here") == {}


def test_last_line_skips_blank_lines() -> None:
    assert last_line("a\nb\n\n") == "b"
    assert last_line("") == "(no output)"


def _failed(stderr: str, code: int = 1) -> CliResult:
    return CliResult("openstack server create", code, "", stderr)


def test_an_expected_failure_must_name_the_site_and_be_clean() -> None:
    xdc = probe("partial", "xdc")
    assert _failure_problems(xdc, _failed("Site Unreachable: image: Corte unreachable")) == []
    assert _failure_problems(xdc, _failed("Unknown error")) == ["the error does not name Corte"]
    hung = _failure_problems(xdc, _failed("timed out Corte", code=-1))
    assert hung == ["the command hung until its timeout"]
    assert "the CLI printed a traceback" in _failure_problems(
        xdc, _failed("Traceback (most recent call last): Corte")
    )


def test_an_unexpected_failure_is_a_problem() -> None:
    assert _failure_problems(probe("global", "xdc"), _failed("boom")) == [
        "`openstack server create` failed"
    ]


def test_the_detail_shows_edgescope_s_line_when_osc_hid_it() -> None:
    hidden = _failed(
        "edgescope: image: Corte unreachable (circuit breaker open)\n"
        "The image service for Paris-demo:Paris exists but does not have any supported versions."
    )
    detail = _failure_detail(hidden, 1.9)
    assert detail.startswith("error after 1.9 s: edgescope: image: Corte unreachable")
    assert detail.endswith("does not have any supported versions.")
    plain = _failed("Quota exceeded for instances")
    assert _failure_detail(plain, None) == "error: Quota exceeded for instances"


# A stand-in for a site whose every `openstack` call fails (the partial row's boot, say).
FAILING = ("sh", "-c", 'echo "Site Unreachable: image: Corte unreachable" >&2; exit 1', "sh")


def test_the_heal_follows_its_own_row_s_boot_never_the_other_row_s() -> None:
    boots = Boots()
    boots.record(probe("global", "star-and-or"), "global-server")
    boots.record(probe("partial", "star-and-or"), "partial-server")
    assert boots.followed(probe("partial", "star-drain")) == "partial-server"
    boots.record(probe("partial", "star-and-or"), None, "error: 503")
    with pytest.raises(ProbeError, match=r"this row's eventual boot .* failed.*error: 503"):
        boots.followed(probe("partial", "star-drain"))


def test_a_failed_eventual_boot_makes_the_heal_cell_fail_saying_why() -> None:
    sites = Sites(
        Path("/x/clouds.yaml"), {site: FAILING for site in ("Paris", "Corte", "Marseille")}
    )
    boots = Boots()
    boots.record(probe("global", "star-and-or"), "global-server")  # the global row booted
    boot = run_probe(sites, probe("partial", "star-and-or"), boots)
    assert not boot.succeeded and ("partial", "star-and-or") in boots.failed
    assert boots.made == {("global", "star-and-or"): "global-server"}
    heal = run_probe(sites, probe("partial", "star-drain"), boots)
    assert heal.symbol == "✗" and not heal.as_expected
    assert "this row's eventual boot (star-and-or) failed" in heal.detail
    assert "Corte unreachable" in heal.detail
    assert "global-server" not in heal.detail
    assert len(sites.history) == 1  # the heal asked no site about another row's server


def test_a_heal_with_no_boot_in_its_row_says_so() -> None:
    boots = Boots()
    boots.record(probe("global", "star-and-or"), "global-server")
    heal = run_probe(Sites(Path("/x/clouds.yaml"), {}), probe("partial", "star-drain"), boots)
    assert heal.symbol == "✗" and "did not run" in heal.detail


def _site(listed: str, stderr: str, there: str | None = None) -> tuple[str, ...]:
    """A stand-in site prefix: the scoped list prints ``listed`` and ``stderr``, exit 0; the
    site's own (unscoped) list, asked by the checks, prints ``there`` (default ``listed``)."""
    script = (
        f"case \"$*\" in *--os-scope*) printf '%s' '{listed}'; printf '%s\\n' '{stderr}' >&2;; "
        f"*) printf '%s' '{there or listed}';; esac"
    )
    return ("sh", "-c", script, "sh")


PARIS_ROWS = '[{"ID": "p1", "Site": "Paris", "Status": "ACTIVE"}]'
WARNING = "edgescope: partial answer: no answer from Corte (connect timeout); shown: the other"


def test_the_partial_list_runs_the_seed_s_command_in_partial_mode() -> None:
    sites = Sites(Path("/x/clouds.yaml"), {"Paris": ECHO_ARGV})
    result = run_probe(sites, probe("partial", "star-list-partial"))
    assert not result.succeeded and not result.as_expected
    command = sites.history[0].stderr.strip()
    assert command.endswith(
        "--os-scope {nova: Paris & Corte} --os-scope-mode partial "
        "server list --all-projects -f json"
    )


def test_a_partial_list_of_paris_s_servers_naming_corte_is_as_expected() -> None:
    sites = Sites(Path("/x/clouds.yaml"), {"Paris": _site(PARIS_ROWS, WARNING)})
    result = run_probe(sites, probe("partial", "star-list-partial"))
    assert result.problems == () and result.as_expected and result.symbol == "✓"
    assert "1 rows" in result.detail and "no answer from Corte" in result.detail


@pytest.mark.parametrize(
    ("stdout", "stderr", "problem"),
    [
        (PARIS_ROWS, "", "no 'partial answer' warning on stderr"),
        (PARIS_ROWS, WARNING.replace("Corte", "Nice"), "does not name Corte"),
        ('[{"ID": "p1", "Site": "Paris & Corte", "Status": "ACTIVE"}]', WARNING, "labelled"),
        ("[]", WARNING, "1 of Paris's servers not listed"),
        ('[{"ID": "c1", "Site": "Paris", "Status": "ACTIVE"}]', WARNING, "c1 is not at Paris"),
    ],
)
def test_a_partial_list_that_hides_the_cut_or_paris_s_servers_is_not_as_expected(
    stdout: str, stderr: str, problem: str, tmp_path: Path
) -> None:
    Registry(tmp_path / "Paris").engine.dispose()  # Paris's real (empty) replica registry
    prefix = {"Paris": _site(stdout, stderr, PARIS_ROWS)}
    sites = Sites(Path("/x/clouds.yaml"), prefix, registries=tmp_path)
    result = run_probe(sites, probe("partial", "star-list-partial"))
    assert result.succeeded and not result.as_expected and result.symbol == "✗"
    assert any(problem in p for p in result.problems), result.problems


def test_a_partial_list_that_failed_is_not_as_expected() -> None:
    sites = Sites(Path("/x/clouds.yaml"), {"Paris": FAILING})
    result = run_probe(sites, probe("partial", "star-list-partial"))
    assert not result.succeeded and not result.as_expected
    assert "Corte unreachable" in result.detail


AROUND_ROWS = '[{"ID": "p1", "Site": "Paris"}, {"ID": "m1", "Site": "Marseille"}]'
CORTE_ROWS = '[{"ID": "c1", "Status": "ACTIVE"}]'


def test_the_around_list_runs_the_scope_as_written_and_checks_where_rows_come_from() -> None:
    prefix = {"Paris": _site(AROUND_ROWS, ""), "Corte": _site(CORTE_ROWS, "", CORTE_ROWS)}
    sites = Sites(Path("/x/clouds.yaml"), prefix)
    result = run_probe(sites, probe("global", "around-list"))
    assert "--os-scope '{nova: around(Paris, 15ms)}' server list" in sites.history[0].command
    assert result.as_expected, result.problems
    assert result.detail == "2 rows: 1 from Marseille, 1 from Paris"


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ('[{"ID": "c1", "Site": "Corte"}]', "from Corte, outside the around"),
        ('[{"ID": "c1"}]', "1 of Corte's servers listed"),  # labelled Paris, but Corte's
    ],
)
def test_an_around_list_with_corte_s_servers_is_not_as_expected(rows: str, problem: str) -> None:
    prefix = {"Paris": _site(rows, ""), "Corte": _site(CORTE_ROWS, "", CORTE_ROWS)}
    result = run_probe(Sites(Path("/x/clouds.yaml"), prefix), probe("global", "around-list"))
    assert result.succeeded and not result.as_expected
    assert any(problem in p for p in result.problems), result.problems
