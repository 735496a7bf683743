"""Each site's Swift, from Debian's packages, answers the real ``swift`` CLI through its
proxy, and its proxy-server reaches its own backends through that proxy too (no scope)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from swift_support import SwiftCli, proxy_calls, sha256

from edgescope.testbed.swift import API_SERVICE, SERVICE_TYPES, SwiftTestbed

pytestmark = pytest.mark.testbed


DEBIAN = ["swift", "swift-proxy", "swift-account", "swift-container", "swift-object",
          "python3-swift", "python3-keystonemiddleware"]  # fmt: skip
"""Swift's packages, its code, and the authtoken filter its proxy-server loads under Keystone."""


def test_debian_packages_are_unmodified() -> None:
    done = subprocess.run(["dpkg", "-V", *DEBIAN], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout) == (0, "")


def test_each_site_stores_and_serves_through_its_proxy(
    swift_bed: SwiftTestbed, swift_cli: dict[str, SwiftCli], tmp_path: Path
) -> None:
    for name, cli in swift_cli.items():
        site = swift_bed.sites[name]
        payload = tmp_path / f"{name}.bin"
        payload.write_bytes(name.encode() * 20_000)
        container = f"own-{name}"
        cli.run("upload", container, str(payload), "--object-name", "o")
        assert cli.run("list", container).stdout.split() == ["o"]
        back = tmp_path / f"{name}.back"
        cli.run("download", container, "o", "-o", str(back))
        assert sha256(back) == sha256(payload)
        # the object is on this site's disk only
        for other in swift_bed.sites.values():
            assert bool(other.data_files(container, "o")) == (other is site), other.name
        # Swift's proxy-server called its object and container servers at the ring
        # addresses, which are the site proxy's listeners
        paths = [str(c["path"]) for c in proxy_calls(site, SERVICE_TYPES["object"])]
        assert any(p.endswith(f"/AUTH_test/{container}/o") for p in paths)
        containers = [str(c["path"]) for c in proxy_calls(site, SERVICE_TYPES["container"])]
        assert any(p.endswith(f"/AUTH_test/{container}") for p in containers)
        assert proxy_calls(site, API_SERVICE)


def test_a_missing_object_is_swifts_own_404(swift_cli: dict[str, SwiftCli], tmp_path: Path) -> None:
    done = swift_cli["Paris"].run(
        "download", "own-Paris", "nothing-here", "-o", str(tmp_path / "x"), check=False, retries=0
    )
    assert done.returncode != 0
    assert "not found" in done.stderr, done.stderr
