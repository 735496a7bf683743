"""The per-machine cache of empty schemas: the first site migrates, the others copy."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from edgescope.testbed import schema_cache


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGESCOPE_CACHE", str(tmp_path / "cache"))


def _migrate(db: Path, calls: list[Path]) -> None:
    calls.append(db)
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num TEXT)")
        conn.execute("INSERT INTO alembic_version VALUES ('head')")
    conn.close()


def _version(db: Path) -> list[tuple[str]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT version_num FROM alembic_version").fetchall()
    finally:
        conn.close()


def test_the_second_site_copies_what_the_first_migrated(tmp_path: Path) -> None:
    calls: list[Path] = []
    first, second = tmp_path / "paris", tmp_path / "corte"
    first.mkdir(), second.mkdir()
    assert not schema_cache.synced(first, ["k.db"], "k", lambda: _migrate(first / "k.db", calls))
    (second / "k.db-wal").write_bytes(b"stale")  # a side file of an older run goes
    assert schema_cache.synced(second, ["k.db"], "k", lambda: _migrate(second / "k.db", calls))
    assert calls == [first / "k.db"]
    assert _version(second / "k.db") == [("head",)]
    assert not (second / "k.db-wal").exists()


def test_parallel_sites_migrate_once(tmp_path: Path) -> None:
    calls: list[Path] = []
    sites = [tmp_path / f"s{i}" for i in range(4)]
    for site in sites:
        site.mkdir()
    threads = [
        threading.Thread(
            target=schema_cache.synced,
            args=(site, ["k.db"], "k", lambda site=site: _migrate(site / "k.db", calls)),
        )
        for site in sites
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert all(_version(site / "k.db") == [("head",)] for site in sites)


def test_a_failed_migration_is_not_kept(tmp_path: Path) -> None:
    def fail() -> None:
        raise RuntimeError("db sync failed")

    with pytest.raises(RuntimeError):
        schema_cache.synced(tmp_path, ["k.db"], "k", fail)
    calls: list[Path] = []
    assert not schema_cache.synced(
        tmp_path, ["k.db"], "k", lambda: _migrate(tmp_path / "k.db", calls)
    )
    assert calls == [tmp_path / "k.db"]


def test_each_schema_and_version_has_its_own_copy() -> None:
    assert schema_cache.schema_dir("keystone") != schema_cache.schema_dir("glance")
    assert schema_cache.schema_dir("keystone") == schema_cache.schema_dir("keystone")
