"""``edgescope scope explain --at SITE --rtt ...``: what around()/nearest() resolve to now."""

from __future__ import annotations

from typer.testing import CliRunner

from edgescope.cli.scope import app

runner = CliRunner()
SCOPE = "{nova: around(Paris, 15ms), glance: nearest(Corte, Marseille)}"


def test_explain_at_a_site_resolves_from_the_given_rtts() -> None:
    result = runner.invoke(
        app, ["explain", "--at", "Paris", "--rtt", "Marseille=10,Corte=20", SCOPE]
    )
    assert result.exit_code == 0, result.output
    assert "at Paris, now: {compute: Paris & Marseille, image: Marseille | Corte}" in result.output
    wider = runner.invoke(app, ["explain", "--at", "Paris", "--rtt", "Marseille=10,Corte=5", SCOPE])
    assert "now: {compute: Paris & Corte & Marseille, image: Corte | Marseille}" in wider.output


def test_explain_without_at_says_the_forms_are_resolved_per_call() -> None:
    result = runner.invoke(app, ["explain", SCOPE])
    assert result.exit_code == 0, result.output
    assert "every site within 15 ms of Paris" in result.output
    assert "try Corte, Marseille, nearest first" in result.output


def test_unknown_rtts_and_bad_rtt_options_are_clear_errors() -> None:
    unknown = runner.invoke(
        app, ["explain", "--at", "Paris", "--rtt", "Marseille=10", "{nova: around(Corte, 15ms)}"]
    )
    assert unknown.exit_code == 2
    assert "no RTT measured from Corte is known at Paris" in unknown.output
    for bad in ("Marseille=x", "Marseille", "=3", "Corte=-1", "Corte=nan"):
        result = runner.invoke(app, ["explain", "--at", "Paris", "--rtt", bad, SCOPE])
        assert result.exit_code == 2, bad
        assert "is not SITE=MS" in result.output
    alone = runner.invoke(app, ["explain", "--rtt", "Corte=3", SCOPE])
    assert alone.exit_code == 2
    assert "--rtt needs --at" in alone.output
