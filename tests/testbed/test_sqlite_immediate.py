"""Processes sharing one SQLite file through oslo.db, as nova's services do."""

from __future__ import annotations

import importlib.util
import multiprocessing
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from edgescope.testbed.layout import SQLITE_PLUGIN

# A skip per test, not of the module: under CI=true each one fails with this reason.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("oslo_db") is None,
    reason="oslo.db is not installed (it comes with requirements/openstack.txt: make openstack)",
)

WRITERS, ROUNDS = 4, 150


def _read_then_write(
    url: str, rounds: int, start: Any, failures: multiprocessing.Queue[int]
) -> None:
    """Each round reads the counter, then writes it back plus one (nova's usual pattern)."""
    from oslo_db.sqlalchemy import engines

    engine = engines.create_engine(url, max_retries=1)  # connects once
    start.wait(timeout=120)  # all writers begin together, however slowly they started
    failed = 0
    for _ in range(rounds):
        try:
            with engine.begin() as connection:
                value = connection.execute(sa.text("SELECT v FROM counter")).scalar()
                connection.execute(sa.text("UPDATE counter SET v = :v"), {"v": value + 1})
        except sa.exc.OperationalError:
            failed += 1
    failures.put(failed)


def _contend(path: Path, query: str) -> tuple[int, int]:
    """(failed transactions, final counter) after WRITERS processes ran ROUNDS each."""
    with sa.create_engine(f"sqlite:///{path}").begin() as connection:
        connection.exec_driver_sql("CREATE TABLE counter (v INTEGER)")
        connection.exec_driver_sql("INSERT INTO counter VALUES (0)")
    context = multiprocessing.get_context("spawn")
    failures: multiprocessing.Queue[int] = context.Queue()
    start = context.Barrier(WRITERS)
    url = f"sqlite:///{path}?{query}"
    writers = [
        context.Process(target=_read_then_write, args=(url, ROUNDS, start, failures))
        for _ in range(WRITERS)
    ]
    for writer in writers:
        writer.start()
    failed = sum(failures.get(timeout=120) for _ in writers)
    for writer in writers:
        writer.join(timeout=30)
    with sa.create_engine(f"sqlite:///{path}").begin() as connection:
        final = connection.exec_driver_sql("SELECT v FROM counter").scalar()
    return failed, final


def test_immediate_transactions_queue_instead_of_failing(tmp_path: Path) -> None:
    failed, final = _contend(tmp_path / "immediate.db", f"timeout=30&plugin={SQLITE_PLUGIN}")
    assert failed == 0
    assert final == WRITERS * ROUNDS  # every increment landed, none lost


def test_without_the_plugin_read_then_write_transactions_fail(tmp_path: Path) -> None:
    """The failure the plugin exists for (if SQLite or oslo.db change, this says so)."""
    failed, final = _contend(tmp_path / "plain.db", "timeout=30")
    assert failed > 0
    assert final == WRITERS * ROUNDS - failed  # failures roll back; nothing half-applied
