"""Snapshots of initialised sites: consistent SQLite copies, no logs or PIDs, keyed safely."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edgescope.testbed import snapshot
from edgescope.testbed.layout import SitePlan


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDGESCOPE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _initialised_site(root: Path) -> SitePlan:
    plan = SitePlan.make("Paris", 1, root)
    (plan.data).mkdir(parents=True)
    with sqlite3.connect(plan.data / "keystone.db") as db:
        db.execute("CREATE TABLE project (name TEXT)")
        db.execute("INSERT INTO project VALUES ('demo')")
    db.close()
    (plan.logs).mkdir()
    (plan.logs / "keystone.log").write_text("noise")
    (plan.run / "stages").mkdir(parents=True)
    (plan.run / "stages" / "initialised").touch()
    (plan.run / "keystone.pid").write_text("123 456")
    return plan


def test_save_then_restore_brings_back_databases_not_logs(tmp_path: Path) -> None:
    plan = _initialised_site(tmp_path / "state")
    key = snapshot.snapshot_key(plan, "rabbit://x")
    snapshot.save(plan, key)
    (plan.data / "keystone.db").unlink()
    assert snapshot.restore(plan, key)
    with sqlite3.connect(plan.data / "keystone.db") as db:
        assert db.execute("SELECT name FROM project").fetchall() == [("demo",)]
    db.close()
    assert (plan.run / "stages" / "initialised").exists()
    assert not (plan.run / "keystone.pid").exists() and not plan.logs.exists()


def test_no_snapshot_means_no_restore(tmp_path: Path) -> None:
    plan = SitePlan.make("Paris", 1, tmp_path)
    assert not snapshot.restore(plan, snapshot.snapshot_key(plan, "rabbit://x"))


def test_key_changes_with_what_the_databases_contain(tmp_path: Path) -> None:
    base = SitePlan.make("Paris", 1, tmp_path)
    key = snapshot.snapshot_key(base, "rabbit://x")
    others = [
        SitePlan.make("Paris", 2, tmp_path),
        SitePlan.make("Paris", 1, tmp_path / "other"),
        SitePlan.make("Paris", 1, tmp_path, catalog="direct"),
        SitePlan.make("Paris", 1, tmp_path, bind_host="10.0.0.1"),
    ]
    keys = {snapshot.snapshot_key(p, "rabbit://x") for p in others}
    keys.add(snapshot.snapshot_key(base, "rabbit://y"))
    assert key not in keys and len(keys) == 5
    assert snapshot.snapshot_key(base, "rabbit://x") == key


def test_ceph_is_not_copied_but_ovn_databases_are(tmp_path: Path) -> None:
    """A live Ceph cannot be copied consistently: a restored site creates its cluster again."""
    plan = _initialised_site(tmp_path / "state")
    (plan.data / "ceph").mkdir()
    (plan.data / "ceph" / "osd-0.img").write_bytes(b"bluestore")
    (plan.data / "ovn").mkdir()
    (plan.data / "ovn" / "ovnnb.ovsdb").write_text("OVSDB JSON 1 0\n{}\n")
    key = snapshot.snapshot_key(plan, "rabbit://x")
    snapshot.save(plan, key)
    (plan.data / "keystone.db").unlink()
    assert snapshot.restore(plan, key)
    assert not (plan.data / "ceph").exists()
    assert (plan.data / "ovn" / "ovnnb.ovsdb").read_text().startswith("OVSDB JSON")
