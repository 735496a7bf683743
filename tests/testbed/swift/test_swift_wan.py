"""Swift's scenarios 1–3 on the emulated WAN, through the real ``swift`` CLI at Paris.

Three sites (Paris, Corte, Marseille) in their own network namespaces (a prefix of this
module's own, never the testbed's ``es``), Renater's delays between them; each runs its
Swift and its proxy in its namespace, and only the proxies talk across the WAN. A cut is
a real one (iptables in the WAN's bridge namespace drops the pair's packets), not a stopped
process as in the loopback tests.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from swift_support import SwiftCli, proxy_calls, proxy_metric, sha256

from edgescope.demo.swift import run_matrix
from edgescope.testbed.swift import SwiftTestbed, missing_binaries
from edgescope.testbed.wan import Wan, load_topology

pytestmark = [pytest.mark.wan, pytest.mark.testbed]
SITES = ["Paris", "Corte", "Marseille"]


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for tool in ("ip", "iptables", "iptables-restore"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (run `make system-deps`)"
    if missing := missing_binaries():
        return f"not installed: {', '.join(missing)} (make system-deps as root)"
    return None


@pytest.fixture(scope="module")
def swift_wan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Wan, SwiftTestbed]]:
    """One 3-site WAN with a Swift per site, shared by the module; both stopped after."""
    if reason := _unavailable():
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("swift-wan")
    prefix = f"es-sw{os.getpid() % 10000}"  # unique on the machine; the testbed's is "es"
    wan = Wan.up(load_topology(sites=SITES), state / "wan", prefix=prefix)
    try:
        bed = SwiftTestbed.create(state / "swift", SITES, port_base=16000, wan=wan)
        try:
            bed.up()
            yield wan, bed
        finally:
            bed.down()
    finally:
        wan.down()


@pytest.fixture
def paris_corte_cut(swift_wan: tuple[Wan, SwiftTestbed]) -> Iterator[Wan]:
    wan, _ = swift_wan
    wan.partition("Paris", "Corte")
    yield wan
    wan.heal()


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    path = tmp_path / "payload.bin"
    path.write_bytes(uuid.uuid4().bytes * 30_000)
    return path


def holders(bed: SwiftTestbed, container: str) -> set[str]:
    return {name for name, site in bed.sites.items() if site.data_files(container, "o")}


def download(cli: SwiftCli, container: str, scope: str | None, to: Path) -> str:
    cli.run("download", container, "o", "-o", str(to), scope=scope)
    return sha256(to)


def test_sites_are_apart(swift_wan: tuple[Wan, SwiftTestbed]) -> None:
    """Each site's proxy is known to its peers by its WAN address, not loopback."""
    wan, bed = swift_wan
    toml = (bed.sites["Paris"].etc / "site.toml").read_text()
    for peer in ("Corte", "Marseille"):
        assert f'url = "http://{wan.site_address(peer)}:' in toml
    assert bed.sites["Paris"].exec_prefix == tuple(wan.exec_prefix("Paris"))


def test_1_paris_api_corte_disks(
    swift_wan: tuple[Wan, SwiftTestbed], payload: Path, tmp_path: Path
) -> None:
    _, bed = swift_wan
    paris = SwiftCli(bed.sites["Paris"])
    scope = "{swift-object: Corte}"
    paris.run("upload", "one", str(payload), "--object-name", "o", scope=scope)
    assert holders(bed, "one") == {"Corte"}
    assert download(paris, "one", scope, tmp_path / "back") == sha256(payload)
    (put,) = [
        c
        for c in proxy_calls(bed.sites["Corte"], "swift-object")
        if c["method"] == "PUT" and str(c["path"]).endswith("/one/o")
    ]
    assert put["from_peer"] == "Paris" and put["status"] == 201


def test_2_and_3_with_paris_corte_cut(
    swift_wan: tuple[Wan, SwiftTestbed],
    payload: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    _, bed = swift_wan
    paris = SwiftCli(bed.sites["Paris"])
    upload = ["--object-name", "o"]
    paris.run("upload", "pc", str(payload), *upload, scope="{swift-object: Paris & Corte}")
    paris.run("upload", "cm", str(payload), *upload, scope="{swift-object: Corte & Marseille}")
    assert holders(bed, "pc") == {"Paris", "Corte"}
    assert holders(bed, "cm") == {"Corte", "Marseille"}
    request.getfixturevalue("paris_corte_cut")
    # 3: `|` falls back to Marseille when Corte is cut off. Paris asks Corte first; the
    # read is hedged (docs/proxy.md, *Hedged reads*): past Corte's recent p95 Marseille is
    # asked too and answers, and Corte's attempt, cancelled, is not listed in the call's
    # sites. Only if Corte's attempt failed first (its breaker already open) is it listed.
    scope = "{swift-object: Corte | Marseille}"
    won = 'edgescope_hedges_total{outcome="won"}'
    hedges_before = proxy_metric(bed.sites["Paris"], won)
    assert download(paris, "cm", scope, tmp_path / "cm") == sha256(payload)
    (get,) = [
        c
        for c in proxy_calls(bed.sites["Paris"], "swift-object")
        if c["method"] == "GET" and str(c["path"]).endswith("/cm/o")
    ]
    assert get["status"] == 200 and get["sites"] in (["Marseille"], ["Corte", "Marseille"])
    if get["sites"] == ["Marseille"]:  # Corte was asked first and lost the race
        assert proxy_metric(bed.sites["Paris"], won) == hedges_before + 1
    served = proxy_calls(bed.sites["Marseille"], "swift-object")
    assert any(
        c["method"] == "GET" and c["from_peer"] == "Paris" and str(c["path"]).endswith("/cm/o")
        for c in served
    )
    assert not [
        c
        for c in proxy_calls(bed.sites["Corte"], "swift-object")
        if c["method"] == "GET" and str(c["path"]).endswith("/cm/o")
    ]  # the cut: no read of it reached Corte
    # 2: the `&` write's copy at Paris is still read, with and without naming Paris
    assert download(paris, "pc", "{swift-object: Paris}", tmp_path / "pc") == sha256(payload)
    assert download(paris, "pc", None, tmp_path / "pc2") == sha256(payload)
    # ... while Corte's copy is out of reach
    done = paris.run(
        "download", "pc", "o", "-o", str(tmp_path / "x"), scope="{swift-object: Corte}",
        check=False, retries=0,
    )  # fmt: skip
    assert done.returncode != 0


def test_the_demo_matrix(swift_wan: tuple[Wan, SwiftTestbed], tmp_path: Path) -> None:
    """``edgescope demo --app swift``'s probes, on this module's sites: every cell as
    expected, and `|` served by Corte, then by Marseille once Paris–Corte is cut."""
    wan, bed = swift_wan
    cells = run_matrix(
        bed, cut=lambda: wan.partition("Paris", "Corte"), heal=wan.heal, work=tmp_path
    )
    assert [(c.row, c.column, c.ok) for c in cells] == [
        ("global", 1, True), ("global", 2, True), ("global", 3, True),
        ("partial", 1, False), ("partial", 2, True), ("partial", 3, True),
    ]  # fmt: skip
    by = {(c.row, c.column): c.detail for c in cells}
    assert by["global", 1].startswith(".data at Corte;")
    assert by["global", 2].startswith(".data at Paris, Corte;")
    assert by["global", 3].endswith("served by Corte")
    assert by["partial", 3].endswith("served by Marseille")
    assert by["partial", 2].endswith("served by Paris")
    assert wan.status().cuts == []  # healed
