"""Swift collaborating across sites by scope, through the real ``swift`` CLI at Paris.

Swift copies the client's headers onto the object calls it derives from a request, so those
carry ``X-Scope``; the calls it makes on its own (container and account info, the container
and account updates its object and container servers send) carry only its transaction id,
at whose end the scope's handle travels (``[[carriers]]`` in each site's proxy config).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from swift_support import SwiftCli, proxy_calls, sha256

from edgescope.testbed.swift import SwiftTestbed

pytestmark = pytest.mark.testbed
ALL_AT_CORTE = "{swift-object: Corte, swift-container: Corte, swift-account: Corte}"


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    path = tmp_path / "payload.bin"
    path.write_bytes(uuid.uuid4().bytes * 30_000)
    return path


@pytest.fixture
def container() -> str:
    return f"c-{uuid.uuid4().hex[:8]}"


def download(cli: SwiftCli, container: str, scope: str | None, to: Path) -> str:
    cli.run("download", container, "o", "-o", str(to), scope=scope)
    return sha256(to)


def holders(bed: SwiftTestbed, container: str) -> set[str]:
    """The sites with a ``.data`` file of ``container``/o under their devices."""
    return {name for name, site in bed.sites.items() if site.data_files(container, "o")}


def test_1_paris_api_corte_disks(
    swift_bed: SwiftTestbed,
    swift_cli: dict[str, SwiftCli],
    payload: Path,
    container: str,
    tmp_path: Path,
) -> None:
    paris = swift_cli["Paris"]
    scope = "{swift-object: Corte}"
    paris.run("upload", container, str(payload), "--object-name", "o", scope=scope)
    assert holders(swift_bed, container) == {"Corte"}
    assert download(paris, container, scope, tmp_path / "back") == sha256(payload)
    # the listing is Paris's (the container was not named): it lists the object
    assert paris.run("list", container).stdout.split() == ["o"]
    # with no scope Paris's own object server has nothing
    done = paris.run("download", container, "o", "-o", str(tmp_path / "x"), check=False, retries=0)
    assert done.returncode != 0 and "not found" in done.stderr


def test_1_every_backend_at_corte_follows_the_transaction_id(
    swift_bed: SwiftTestbed,
    swift_cli: dict[str, SwiftCli],
    payload: Path,
    container: str,
    tmp_path: Path,
) -> None:
    """The scope on the token (the CLI sends no header on its container PUT): Swift's
    account and container calls, and the updates Corte's servers send back to the
    addresses in Paris's rings, carry no client header, yet all reach Corte."""
    paris, corte = swift_cli["Paris"], swift_cli["Corte"]
    scope = ALL_AT_CORTE
    # The account exists at Corte (its own API creates it, as a site provisions its users):
    # Paris's Swift caches account info by path, not by scope, so having seen the account at
    # Paris it would not create it at Corte (docs/genericity.md, Swift's memcache).
    corte.run("post")
    paris.run("upload", container, str(payload), "--object-name", "o", scope=scope, in_token=True)
    assert holders(swift_bed, container) == {"Corte"}
    # the listing is at Corte: Corte's own API lists the object, Paris's has no container
    assert corte.run("list", container).stdout.split() == ["o"]
    assert paris.run("list", container, scope=scope, in_token=True).stdout.split() == ["o"]
    assert paris.run("list", container, check=False, retries=0).returncode != 0
    assert download(corte, container, None, tmp_path / "back") == sha256(payload)
    # Corte's object server updated the container at Paris's ring address, which sent the
    # update on to Corte by the handle at the end of its X-Trans-Id
    calls = proxy_calls(swift_bed.sites["Paris"], "swift-container")
    mine = [c for c in calls if f"/{container}" in str(c["path"])]
    updates = [c for c in mine if c["method"] == "PUT" and str(c["path"]).endswith("/o")]
    assert updates and all(c["carrier"] == "handle" for c in updates)
    assert all(c["sites"] == ["Corte"] and c["status"] == 201 for c in updates)
    assert all(c["sites"] == ["Corte"] for c in mine if c["scope"] is not None)


def test_2_and_stores_at_both(
    swift_bed: SwiftTestbed,
    swift_cli: dict[str, SwiftCli],
    payload: Path,
    container: str,
    tmp_path: Path,
) -> None:
    paris = swift_cli["Paris"]
    paris.run(
        "upload", container, str(payload), "--object-name", "o",
        scope="{swift-object: Paris & Corte}",
    )  # fmt: skip
    assert holders(swift_bed, container) == {"Paris", "Corte"}
    for site in ("Paris", "Corte"):
        scope = f"{{swift-object: {site}}}"
        assert download(paris, container, scope, tmp_path / site) == sha256(payload)


@pytest.fixture
def corte_down(swift_bed: SwiftTestbed) -> Iterator[None]:
    """Corte's proxy stopped (on loopback, instead of a WAN cut); started again after."""
    swift_bed.stop("Corte", ["edgescope"])
    yield
    swift_bed.up(["Corte"])


def test_3_or_falls_back_to_marseille_and_paris_keeps_its_copy(
    swift_bed: SwiftTestbed,
    swift_cli: dict[str, SwiftCli],
    payload: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    paris = swift_cli["Paris"]
    upload = ["--object-name", "o"]
    paris.run("upload", "cm", str(payload), *upload, scope="{swift-object: Corte & Marseille}")
    paris.run("upload", "pc", str(payload), *upload, scope="{swift-object: Paris & Corte}")
    assert holders(swift_bed, "cm") == {"Corte", "Marseille"}
    request.getfixturevalue("corte_down")
    scope = "{swift-object: Corte | Marseille}"
    assert download(paris, "cm", scope, tmp_path / "cm") == sha256(payload)
    (get,) = [
        c
        for c in proxy_calls(swift_bed.sites["Paris"], "swift-object")
        if c["method"] == "GET" and str(c["path"]).endswith("/cm/o")
    ]
    assert get["sites"] == ["Corte", "Marseille"] and get["status"] == 200
    served = proxy_calls(swift_bed.sites["Marseille"], "swift-object")
    assert any(c["method"] == "GET" and c["from_peer"] == "Paris" for c in served)
    # the & write's copy at Paris is still read with Corte gone
    scope = "{swift-object: Paris}"
    assert download(paris, "pc", scope, tmp_path / "pc") == sha256(payload)
    done = paris.run(
        "download", "pc", "o", "-o", str(tmp_path / "x"), scope="{swift-object: Corte}",
        check=False, retries=0,
    )  # fmt: skip
    assert done.returncode != 0
