"""A SQLAlchemy plugin that starts every SQLite transaction with ``BEGIN IMMEDIATE``.

The testbed's services share one SQLite file per database across processes (nova-api's
workers, nova-conductor, nova-scheduler). oslo.db opens each transaction with a plain
``BEGIN``, which takes no lock until the first write. A transaction that reads and then writes
while another process holds the write lock cannot wait for it (SQLite would deadlock), so it
fails at once with "database is locked", whatever ``?timeout=`` says; nova then leaves
servers in ERROR or stuck "deleting". ``BEGIN IMMEDIATE`` takes the write lock up front, so
the busy timeout applies and transactions queue instead of failing.

A database URL opts in with ``?plugin=edgescope_immediate`` (``layout.SQLITE_PLUGIN``; a
documented SQLAlchemy extension point, registered under the ``sqlalchemy.plugins`` entry
point group); no line of OpenStack changes. The plugin's ``begin`` listener runs before
oslo.db's and sets the marker oslo.db checks (``in_transaction``), so oslo.db's own ``BEGIN``
is skipped.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, CreateEnginePlugin, Engine

MARKER = "in_transaction"
"""The ``Connection.info`` key oslo.db uses for "a BEGIN was sent"."""


class ImmediateTransactions(CreateEnginePlugin):
    """Make an SQLite engine begin each transaction with ``BEGIN IMMEDIATE``."""

    def update_url(self, url: URL) -> URL:
        return url  # SQLAlchemy has removed ``plugin=`` already; the plugin takes no options

    def engine_created(self, engine: Engine) -> None:
        if engine.dialect.name != "sqlite":
            return

        @event.listens_for(engine, "connect")
        def _no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # the driver must not send its own BEGIN

        @event.listens_for(engine, "begin")
        def _begin_immediate(connection: Any) -> None:
            if MARKER not in connection.info:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
                connection.info[MARKER] = True

        @event.listens_for(engine, "commit")
        @event.listens_for(engine, "rollback")
        def _ended(connection: Any) -> None:
            connection.info.pop(MARKER, None)
