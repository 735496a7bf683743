"""Empty schemas made once per machine: the first site runs a ``*-manage db sync``, the others
(of this testbed and of every later one) start from a copy of what it made.

A cold site runs a schema migration per database; each is a process that imports its service
and migrates an empty SQLite file. For keystone, glance, placement and nova's API and cell
databases that file is the same at every site: no row of it names a site or holds a random id
(bootstrap, cell mappings and content, run per site afterwards, do). A CI run starts six sites
cold, so five of the six runs of each of these are saved. Left out, because their fresh schema
holds random ids that must differ between independent clouds: cinder (the ``__DEFAULT__``
volume type) and neutron (the default security group rules).

The cache lives beside the site snapshots (``snapshot.cache_root()``) and is keyed by the
installed OpenStack versions; a lock per schema makes parallel sites wait for the first one's
copy instead of migrating too.

    >>> schema_cache.synced(plan.data, ["keystone.db"], "keystone", run_keystone_db_sync)
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

from edgescope.testbed import snapshot

FORMAT = 1
"""Bump when a sync command changes, so older copies are not reused."""


def schema_dir(name: str) -> Path:
    """Where the copy of schema ``name`` lives for the installed OpenStack versions."""
    facts = {"format": FORMAT, "name": name, "versions": snapshot.installed_versions()}
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]
    return snapshot.cache_root() / "schemas" / f"{name}-{digest}"


def synced(data: Path, files: Sequence[str], name: str, sync: Callable[[], object]) -> bool:
    """Give ``data/<file>`` for each of ``files`` the schema ``sync`` makes there: copied from
    the cache when it holds it (True), else made by ``sync`` and then kept (False)."""
    entry = schema_dir(name)
    entry.parent.mkdir(parents=True, exist_ok=True)
    with (entry.parent / f"{entry.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if (entry / "complete").exists():
            for file in files:
                _copy_db(entry / file, data / file)
            return True
        sync()
        partial = entry.with_name(entry.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        for file in files:
            _copy_db(data / file, partial / file)
        (partial / "complete").touch()
        shutil.rmtree(entry, ignore_errors=True)
        partial.rename(entry)
        return False


def _copy_db(source: Path, target: Path) -> None:
    """A consistent copy of an SQLite file (SQLite's backup API), replacing ``target``."""
    for side in ("", *snapshot.SQLITE_SIDE_FILES):
        target.with_name(target.name + side).unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


__all__ = ["FORMAT", "schema_dir", "synced"]
