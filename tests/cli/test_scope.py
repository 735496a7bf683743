"""``edgescope scope check|explain`` through typer's CliRunner, and once as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgescope.cli.scope import app
from edgescope.lang.check import EXAMPLE_CATALOG_TOML

runner = CliRunner()
SITES = "Paris,Corte,Marseille"


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("scope", "canonical"),
    [
        (
            "{nova: Paris&Corte, glance: Corte||Marseille}",
            "{compute: Paris & Corte, image: Corte | Marseille}",
        ),
        ("{nova: Paris, glance: Corte}", "{compute: Paris, image: Corte}"),
        ("{keystone: Paris & Corte}", "{identity: Paris & Corte}"),
        (
            "{nova: Paris & Corte, glance: (Corte | Marseille) & Paris}",
            "{compute: Paris & Corte, image: (Corte | Marseille) & Paris}",
        ),
        (
            '{"compute": "Paris", "image": "Corte | Marseille"}',
            "{compute: Paris, image: Corte | Marseille}",
        ),
    ],
)
def test_check_prints_the_canonical_text(scope: str, canonical: str) -> None:
    assert invoke("check", "--sites", SITES, scope) == (0, canonical + "\n", "")


def test_check_json() -> None:
    code, out, _ = invoke("check", "--json", "{nova: Paris&Corte, glance: Corte||Marseille}")
    assert code == 0
    assert out == (
        '{"compute": {"and": ["Paris", "Corte"]}, "image": {"or": ["Corte", "Marseille"]}}\n'
    )
    assert json.loads(out)["image"] == {"or": ["Corte", "Marseille"]}


def test_check_json_of_a_site_that_needs_quotes_in_text() -> None:
    code, out, _ = invoke("check", "--json", '{nova: "New York", glance: "São Paulo" | Nice}')
    assert code == 0
    assert json.loads(out) == {"compute": "New York", "image": {"or": ["São Paulo", "Nice"]}}
    assert invoke("check", out.strip()) == (
        0,
        '{compute: "New York", image: "São Paulo" | Nice}\n',
        "",
    )


def test_an_empty_scope_error_has_a_caret() -> None:
    assert invoke("check", "") == (
        2,
        "",
        "error: expected '{' to open the scope (at column 1)\n\n^\n",
    )


def test_syntax_error_has_column_and_caret_on_stderr() -> None:
    code, out, err = invoke("check", "{nova: Paris & }")
    assert (code, out) == (2, "")
    assert err == (
        "error: expected a site name, a quoted site name or '(' (at column 16)\n"
        "{nova: Paris & }\n"
        "               ^\n"
    )


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--sites", SITES, "{nova: Pari}"], "unknown site 'Pari'; did you mean Paris?"),
        (["--sites", SITES, "{nova: Paris, neutron: Corte}"], "network must run at the same site"),
        (["{novaa: Paris}"], "unknown service 'novaa'; did you mean nova?"),
        (["{nova: Paris, compute: Paris}"], "given twice"),
        (["{nova: Paris | Paris}"], "appears twice"),
        (["{nova: " + "(" * 100_000 + "}"], "characters long; the limit is 16384"),
        (["{nova: " + "(" * 1000 + "}"], "nesting is deeper than 32 levels"),
        (["{nova: Paris}\r\nX-Auth-Token: x"], "control character U+000D"),
        (["--sites", " , ", "{}"], "--sites is empty"),
        (["--sites", "a", "--catalog", "x.toml", "{}"], "not both"),
        (["--catalog", "/nonexistent/catalog.toml", "{}"], "cannot read catalog"),
    ],
)
def test_errors_exit_2_without_traceback(args: list[str], complaint: str) -> None:
    code, out, err = invoke("check", *args)
    assert (code, out) == (2, "")
    assert err.startswith("error: ") and complaint in err
    assert "Traceback" not in err


def test_catalog_file_and_extra_rules(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(EXAMPLE_CATALOG_TOML)
    code, _, err = invoke("check", "--catalog", str(catalog), "{nova: Marseille}")
    assert code == 2 and "site 'Marseille' does not run compute" in err
    assert invoke("check", "--catalog", str(catalog), "{glance: Marseille, nova: Paris}")[0] == 0
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rules]]\nname = "n"\nservices = ["glance", "nova"]\nexplanation = "too far"\n'
    )
    code, _, err = invoke(
        "check",
        "--catalog",
        str(catalog),
        "--rules",
        str(rules),
        "{glance: Marseille, nova: Paris}",
    )
    assert code == 2 and "too far" in err


def test_explain_in_words_and_as_a_tree() -> None:
    code, out, _ = invoke("explain", "{nova: Paris & Corte, glance: Corte | Marseille}")
    assert code == 0
    first, *tree = out.splitlines()
    assert first == (
        "compute: run in Paris and in Corte, concurrently; image: try Corte, then Marseille; "
        "everything else: local"
    )
    text = "\n".join(tree)
    assert "compute (written nova)" in text and "& all of, concurrently" in text
    assert "| first success, in order" in text and "site Marseille" in text
    assert text.index("site Corte") < text.index("site Marseille")


def test_explain_nested_and_empty() -> None:
    out = invoke("explain", "{glance: (Corte | Marseille) & Paris, nova: a | b & c}")[1]
    assert out.splitlines()[0] == (
        "image: run in (try Corte, then Marseille) and in Paris, concurrently; "
        "compute: try a, then b and c concurrently; everything else: local"
    )
    assert invoke("explain", "{}")[1].splitlines()[0] == "everything: local"


def test_explain_errors_like_check() -> None:
    code, _, err = invoke("explain", "--sites", SITES, "{nova: Nice}")
    assert code == 2 and "unknown site 'Nice'" in err


def test_real_command_line() -> None:
    done = subprocess.run(
        [Path(sys.executable).parent / "edgescope", "scope", "check", "{nova: Paris ||}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: expected a site name") and "^" in done.stderr
    assert "Traceback" not in done.stderr
