"""Swift's scenarios 1–3 on the emulated WAN, through the real ``swift`` CLI at Paris, and
scenario 1 through ``openstack object ...`` with each site's Keystone.

Three sites (Paris, Corte, Marseille) in their own network namespaces (a prefix of this
module's own, never the testbed's ``es``), Renater's delays between them; each runs its
Swift and its proxy in its namespace, and only the proxies talk across the WAN. A cut is
a real one (iptables in the WAN's bridge namespace drops the pair's packets), not a stopped
process as in the loopback tests.

Each site also runs its own Keystone (``swift_keystone.py``): ``object-store`` is in its
catalog, and its proxy-server checks Keystone tokens (authtoken + keystoneauth, accounts
``KEY_*``) besides tempauth's (``AUTH_test``, the ``swift`` CLI tests and the demo's).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from swift_support import SwiftCli, proxy_calls, proxy_metric, sha256

from edgescope.demo.swift import run_matrix
from edgescope.testbed import swift_keystone
from edgescope.testbed.swift import SwiftSite, SwiftTestbed, missing_binaries
from edgescope.testbed.wan import Wan, load_topology

pytestmark = [pytest.mark.wan, pytest.mark.testbed]
SITES = ["Paris", "Corte", "Marseille"]
OPENSTACK = str(Path(sys.executable).parent / "openstack")


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
        bed = SwiftTestbed.create(state / "swift", SITES, port_base=16000, wan=wan, keystone=True)
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


def holders(bed: SwiftTestbed, container: str, account: str | None = None) -> set[str]:
    found = {
        n: s.data_files(container, "o", *([account] if account else []))
        for n, s in bed.sites.items()
    }
    return {name for name, files in found.items() if files}


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


def test_1_through_openstack_object_and_keystone(
    swift_wan: tuple[Wan, SwiftTestbed], payload: Path, tmp_path: Path
) -> None:
    """Scenario 1 through the real ``openstack object`` commands: Paris's Keystone issues the
    token, its catalog's ``object-store`` is Paris's proxy, and the object lands at Corte."""
    _, bed = swift_wan
    paris = bed.sites["Paris"]
    clouds = tmp_path / "clouds.yaml"  # JSON is YAML
    clouds.write_text(json.dumps(swift_keystone.clouds(list(bed.sites.values()))))
    catalog = json.loads(openstack(paris, clouds, "catalog", "show", "object-store", "-f", "json"))
    account = swift_keystone.keystone_account(paris)
    assert {
        (e["region"], e["url"]) for e in catalog["endpoints"] if e["interface"] == "public"
    } == {("Paris", f"{paris.url('object-store')}/v1/{account}")}
    scope = "{swift-object: Corte}"
    openstack(paris, clouds, "container", "create", "ks-one", scope=scope)
    openstack(paris, clouds, "object", "create", "--name", "o", "ks-one", str(payload), scope=scope)
    assert holders(bed, "ks-one", account) == {"Corte"}
    shown = json.loads(
        openstack(paris, clouds, "object", "show", "ks-one", "o", "-f", "json", scope=scope)
    )
    assert shown["etag"] == hashlib.md5(payload.read_bytes(), usedforsecurity=False).hexdigest()
    back = tmp_path / "back"
    openstack(paris, clouds, "object", "save", "--file", str(back), "ks-one", "o", scope=scope)
    assert sha256(back) == sha256(payload)
    (put,) = [
        c
        for c in proxy_calls(bed.sites["Corte"], "swift-object")
        if c["method"] == "PUT" and str(c["path"]).endswith(f"/{account}/ks-one/o")
    ]
    assert put["from_peer"] == "Paris" and put["status"] == 201
    # without the scope, Paris's own disks: that object is not there
    done = subprocess.run(
        openstack_argv(paris, "object", "show", "ks-one", "o"),
        env=openstack_env(clouds), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0 and "404" in done.stderr + done.stdout, done.stderr


def openstack_env(clouds: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    return {**env, "OS_CLIENT_CONFIG_FILE": str(clouds)}


def openstack_argv(site: SwiftSite, *args: str, scope: str | None = None) -> list[str]:
    scoped = ["--os-scope", scope] if scope else []
    return [*site.exec_prefix, OPENSTACK, "--os-cloud", site.name, *scoped, *args]


def openstack(site: SwiftSite, clouds: Path, *args: str, scope: str | None = None) -> str:
    """The real ``openstack`` CLI (with edgescope's ``--os-scope``) in ``site``'s namespace."""
    done = subprocess.run(
        openstack_argv(site, *args, scope=scope),
        env=openstack_env(clouds), capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"openstack {' '.join(args)} (scope {scope}) failed: {done.stderr[-800:]}")
    return done.stdout
