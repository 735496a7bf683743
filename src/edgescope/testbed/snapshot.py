"""A cache of initialised sites: initialise a site once, restore its folder in seconds later.

Cold initialisation (DB syncs, keys, catalog, content) costs ~2.5 min of CPU per site; a
restored folder only needs a warm start (~25 s). A snapshot is taken right after a site's
initialisation, while it runs: SQLite files are copied with SQLite's online backup API (a
consistent copy even with writers), everything else is copied as is, logs and PIDs are not.

The cache key covers everything baked into the databases: the site's name, index, folder,
address, ports, catalog mode, RabbitMQ URL and the installed OpenStack versions. Snapshots
live in ``$EDGESCOPE_CACHE`` or ``~/.cache/edgescope/testbed``; ``deployment.py`` saves and
restores them.

    >>> if not restore(site.plan, key):   # after `testbed down --purge`
    ...     site.initialise(); save(site.plan, key)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from importlib import metadata
from pathlib import Path

from edgescope.testbed.layout import SitePlan

FORMAT = 2
"""Bump when the site's initialisation changes, so old snapshots are not reused."""
_PACKAGES = ("keystone", "glance", "openstack-placement", "nova", "neutron", "cinder")
_NOT_COPIED = (("data", "ceph"),)
"""A live Ceph cannot be copied consistently (and its OSD is a 10 GB sparse file): a
restored site creates its empty cluster again (~15 s), as the cold start did."""


SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def cache_root() -> Path:
    env = os.environ.get("EDGESCOPE_CACHE")
    base = Path(env) if env else Path.home() / ".cache" / "edgescope"
    return base / "testbed"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def installed_versions() -> dict[str, str]:
    """The installed version of each OpenStack package whose migrations a site runs."""
    return {p: _version(p) for p in _PACKAGES}


def snapshot_key(plan: SitePlan, transport_url: str) -> str:
    """A name for the snapshot of ``plan`` that changes whenever the snapshot would be wrong."""
    facts = {
        "format": FORMAT,
        "site": plan.name,
        "index": plan.index,
        "root": str(plan.root),
        "host": plan.bind_host,
        "port_base": plan.port_base,
        "catalog": plan.catalog,
        "transport": transport_url,
        "database": plan.sqlite_url("any"),  # nova's cell mappings store their URLs
        "versions": installed_versions(),
    }
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]
    return f"{plan.name}-{digest}"


def _copy_tree(src: Path, dst: Path) -> None:
    for path in src.rglob("*"):
        rel = path.relative_to(src)
        if rel.parts[0] == "log" or (rel.parts[0] == "run" and rel.parts[:2] != ("run", "stages")):
            continue
        if rel.parts[:2] in _NOT_COPIED:
            continue
        if path.name.endswith(SQLITE_SIDE_FILES):  # the .db's backup below already holds them
            continue
        target = dst / rel
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".db":
            with sqlite3.connect(path, timeout=30) as source, sqlite3.connect(target) as copy:
                source.backup(copy)
            source.close()
            copy.close()
        else:
            shutil.copy2(path, target)


def save(plan: SitePlan, key: str) -> Path:
    """Copy the site's folder into the cache (replacing an older copy of the same key)."""
    final = cache_root() / key
    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    _copy_tree(plan.root, partial)
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    return final


def restore(plan: SitePlan, key: str) -> bool:
    """Fill the (empty) site folder from the cache; False if there is no snapshot."""
    source = cache_root() / key
    if not (source / "run" / "stages" / "initialised").exists():
        return False
    shutil.rmtree(plan.root, ignore_errors=True)
    _copy_tree(source, plan.root)
    return True
