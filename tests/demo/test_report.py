"""The demo's HTML report: the seed's table, bars per probe, the partial phase's timeline."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from edgescope.demo.matrix import MATRIX, ProbeResult, probe
from edgescope.demo.report import Phase, render_html

T0 = 1_800_000_000.0


def results() -> list[ProbeResult]:
    made = []
    for i, p in enumerate(MATRIX):
        started = T0 + 10 + 20 * i if p.row == "partial" else None
        made.append(ProbeResult(p, p.expect_ok, 5.0 + i, f"detail <{p.key}>", started=started))
    return made


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def parsed(html: str) -> list[tuple[str, dict[str, str | None]]]:
    checker = _Checker()
    checker.feed(html)
    return checker.tags


def test_the_report_holds_the_table_each_probe_and_the_timeline() -> None:
    phases = [Phase("Paris–Corte cut", T0, T0 + 200)]
    html = render_html(results(), note="emulated WAN", phases=phases, generated=T0)
    tags = parsed(html)
    cells = [a for t, a in tags if t == "div" and a.get("data-probe")]
    assert len(cells) == len(MATRIX)
    bars = [a for t, a in tags if t == "rect" and "bar" in (a.get("class") or "")]
    partial = [p for p in MATRIX if p.row == "partial"]
    assert len(bars) == len(MATRIX) + len(partial)  # timings, then the timeline
    timeline = [a for a in bars if a.get("data-start") is not None]
    assert [float(a["data-start"] or 0) for a in timeline] == [
        10.0 + 20 * i for i, p in enumerate(MATRIX) if p.row == "partial"
    ]
    assert f"{len(MATRIX)}/{len(MATRIX)} probes came out as expected" in html
    assert "seed claims" not in html.split('class="departures"')[0]  # the verdict line
    # the departures from the seed, apart: one per changed expectation or command
    listed = re.findall(r"<li>([^<]*)</li>", html)
    assert len(listed) == 7
    assert sum("expected ✗ where the seed claims ✓ in theory" in item for item in listed) == 3
    assert any("plus --os-scope-mode eventual" in item for item in listed)
    assert any("plus --os-scope-mode partial" in item for item in listed)
    assert "detail &lt;xdc&gt;" in html and "<xdc>" not in html  # escaped
    assert re.search(r'class="phase"', html) and "healed" in html


def test_an_unexpected_outcome_is_marked_and_loopback_has_no_timeline() -> None:
    wrong = ProbeResult(probe("global", "xdc"), succeeded=False, seconds=2.0, detail="503")
    html = render_html([wrong], note="loopback")
    assert 'class="unexpected"' in html and "0/1 probes came out as expected" in html
    assert 'class="departures"' not in html  # the global x-DC boot is the seed's, as is
    assert "No partial phase" in html
