"""The seed's matrix as data and its rendering (pure, no sites needed)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from edgescope.demo.matrix import (
    COLUMNS,
    LIST,
    MATRIX,
    ROWS,
    ProbeResult,
    departures,
    probe,
    probes_for,
    render_markdown,
    render_summary_grid,
    render_table,
    summary,
    verdict,
)


def _as_claimed() -> list[ProbeResult]:
    return [ProbeResult(p, p.expect_ok, 1.5, f"did {p.key}") for p in MATRIX]


def _text(results: list[ProbeResult]) -> str:
    console = Console(width=600, record=True, file=io.StringIO())
    console.print(render_table(results, title="t"))
    return console.export_text()


def test_every_cell_of_the_seed_table_has_a_probe() -> None:
    for row in ROWS:
        assert {p.column for p in probes_for(row)} == set(COLUMNS)
    assert len({(p.row, p.key) for p in MATRIX}) == len(MATRIX)


def test_the_seed_commands_are_run_verbatim() -> None:
    labels = {p.label for p in MATRIX}
    assert "{nova: Paris&Corte, glance: Corte}" in labels  # the seed's *-DC boot
    assert "{nova: Paris&Corte, glance: Corte|Marseille}" in labels  # its x/*-DC boot
    assert "{nova: Paris, glance: Corte | Marseille}" in labels  # its '|' boot, by name
    for p in MATRIX:
        if p.kind == "boot" and p.scope is not None:
            assert p.label.startswith(p.scope)


def test_partial_row_expectations_follow_the_semantics() -> None:
    assert probe("partial", "1dc-paris").expect_ok and probe("partial", "1dc-corte").expect_ok
    xdc = probe("partial", "xdc")
    assert not xdc.expect_ok and xdc.must_name == ("Corte",) and xdc.why
    assert probe("partial", "xdc-or").image_from == "Marseille"
    assert probe("global", "xdc-or").image_from == "Corte"
    strict = probe("partial", "star-and")
    assert not strict.expect_ok and strict.why and "all or nothing" in strict.claim
    eventual = probe("partial", "star-and-or")
    assert eventual.expect_ok and eventual.mode == "eventual" and eventual.queued == ("Corte",)
    assert probe("partial", "star-drain").kind == "drain"
    assert set(probe("partial", "star-list").must_name) == {"Paris", "Corte"}
    assert probe("global", "star-and").sites == ("Paris", "Corte")
    assert all(p.expect_ok for p in probes_for("global"))
    # every expected failure says why it differs from the seed's theoretical ✓
    assert all(p.why for p in MATRIX if not p.expect_ok)


def test_1dc_probes_run_without_scope_at_their_own_site() -> None:
    for row in ROWS:
        for site in ("Paris", "Corte"):
            one = probe(row, f"1dc-{site.lower()}")
            assert one.scope is None and one.client_site == site and one.image_from == site


def test_expected_failure_is_as_expected_but_shown_as_cross() -> None:
    result = ProbeResult(probe("partial", "xdc"), False, 2.0, "503 Corte unreachable")
    assert result.symbol == "✗" and result.as_expected


def test_unexpected_success_or_failed_check_is_not_as_expected() -> None:
    success = ProbeResult(probe("partial", "xdc"), True, 9.0, "booted")
    assert success.symbol == "✓" and not success.as_expected
    wrong_image = ProbeResult(probe("global", "xdc"), True, 9.0, "booted", ("image is Paris's",))
    assert wrong_image.symbol == "✗" and not wrong_image.as_expected
    skipped = ProbeResult(probe("partial", "xdc"), False, 0.0, "needs the WAN", skipped=True)
    assert skipped.symbol == "–" and not skipped.as_expected


def test_table_shows_rows_columns_times_and_expected_outcomes() -> None:
    text = _text(_as_claimed())
    for needle in ("Boot VM — global", "Boot VM — partial", "1-DC", "x-DC", "*-DC", "1.5 s"):
        assert needle in text
    assert "expected ✗ (fails fast, naming Corte): as expected" in text
    assert "NOT as expected" not in text


def test_table_flags_a_mismatch() -> None:
    results = _as_claimed()
    results[0] = ProbeResult(results[0].probe, False, 3.0, "error: 500")
    assert "NOT as expected" in _text(results)
    assert verdict(results) == (len(MATRIX) - 1, len(MATRIX))


def test_summary_grid_is_the_seed_grid() -> None:
    assert render_summary_grid(_as_claimed()).splitlines() == [
        "Boot VM   1-DC   x-DC   *-DC",
        "global    ✓✓     ✓✓     ✓✓✓✓",
        "partial   ✓✓     ✗✓     ✗✓✗✓✓",
    ]


def test_skipped_row_counts_nothing() -> None:
    results = [ProbeResult(p, True, 1.0, "ok") for p in probes_for("global")]
    results += [
        ProbeResult(p, False, 0.0, "needs the WAN", skipped=True) for p in probes_for("partial")
    ]
    assert verdict(results) == (8, 8)
    assert "skipped: needs the WAN" in _text(results)


def test_markdown_escapes_pipes() -> None:
    lines = render_markdown(_as_claimed()).splitlines()
    assert len(lines) == 2 + len(MATRIX)
    assert all(line.count(" | ") == 6 for line in lines[2:])  # `Corte | Marseille` escaped


def test_unknown_probe_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        probe("global", "nope")


def test_summary_counts_outcomes_and_lists_departures_from_the_seed_apart() -> None:
    line, departures = summary(_as_claimed())
    assert line == f"{len(MATRIX)}/{len(MATRIX)} probes came out as expected"
    assert "seed" not in line
    changed = [p for p in MATRIX if not p.expect_ok]
    assert {(p.row, p.key) for p in changed} == {
        ("partial", "xdc"),
        ("partial", "star-and"),
        ("partial", "star-list"),
    }
    for p in changed:
        [said] = [d for d in departures if d.startswith(f"{p.row} {p.column} {p.label}:")]
        assert said.endswith(f"expected ✗ where the seed claims ✓ in theory: {p.why}")
    [eventual] = [d for d in departures if "--os-scope-mode eventual:" in d]
    assert "the seed's command plus --os-scope-mode eventual" in eventual
    assert any("not in the seed's table" in d for d in departures)
    assert len(departures) == 7
    [around] = [d for d in departures if d.startswith("global")]  # the one cell beyond the seed
    assert "around(Paris, 15ms)" in around and "not in the seed" in around


def test_summary_of_a_failed_changed_cell_and_of_a_skipped_row() -> None:
    results = _as_claimed()
    xdc = [i for i, r in enumerate(results) if (r.probe.row, r.probe.key) == ("partial", "xdc")]
    results[xdc[0]] = ProbeResult(probe("partial", "xdc"), True, 9.0, "booted")
    line, _ = summary(results)
    assert line == f"{len(MATRIX) - 1}/{len(MATRIX)} probes came out as expected"
    skipped = [ProbeResult(p, True, 1.0, "ok") for p in probes_for("global")] + [
        ProbeResult(p, False, 0.0, "needs the WAN", skipped=True) for p in probes_for("partial")
    ]
    line, departures = summary(skipped)
    assert line == "8/8 probes came out as expected (9 skipped)"
    assert [d.split(" server list: ", 1)[0] for d in departures] == [
        "global *-DC {nova: around(Paris, 15ms)}"
    ]


def test_the_table_says_how_a_changed_cell_differs_from_the_seed() -> None:
    text = _text(_as_claimed())
    assert "seed: ✓ in theory; here ✗ because strict '&' is all or nothing" in text
    assert "differs from the seed: the seed's command plus --os-scope-mode eventual" in text


def test_the_partial_row_adds_a_partial_mode_list_beside_the_strict_one() -> None:
    strict, partial = probe("partial", "star-list"), probe("partial", "star-list-partial")
    assert (strict.mode, strict.expect_ok, strict.label) == ("strict", False, f"{LIST} server list")
    assert partial.column == strict.column and partial.scope == strict.scope == LIST
    assert partial.label == f"{strict.label} --os-scope-mode partial"
    assert (partial.kind, partial.mode, partial.expect_ok) == ("list", "partial", True)
    assert partial.must_name == ("Corte",) and "star-list-partial" not in {
        p.key for p in probes_for("global")
    }
    [said] = departures([partial])
    assert said.startswith(f"partial *-DC {partial.label}: the seed's command plus")
    assert "--os-scope-mode partial" in said.split(": ", 1)[1]
