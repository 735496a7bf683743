"""Where a site's replica state lives: the SQLAlchemy schema, engines and their failure modes.

Neighbours: :mod:`registry` runs every statement; :mod:`extension` reads ``[replicas]
database`` (or ``state_dir``) and hands the URL here. Two back ends, one schema:

* SQLite, embedded (the default): ``<state_dir>/replicas.sqlite3``, WAL journal,
  ``synchronous=FULL``, a busy timeout, so one proxy or several on one host share it;
* MariaDB/MySQL (``mysql+pymysql://user:pw@host/edgescope``), e.g. the site's Galera cluster
  behind its HAProxy, so several proxies of one site on several hosts share one state.

Every table has a primary key and only InnoDB types (Galera's requirements). Claims are
single conditional statements (``UPDATE ... WHERE owner ... OR until < now``, ``INSERT`` on a
primary key), never ``SELECT ... FOR UPDATE``: Galera certifies them on its single writer and
reports a conflict as a deadlock error, which :func:`is_conflict` recognises.

    >>> database_url("/var/lib/edgescope/Paris")
    'sqlite:////var/lib/edgescope/Paris/replicas.sqlite3'
    >>> redact("mysql+pymysql://edgescope:s3cret@10.0.0.10/edgescope")
    'mysql+pymysql://edgescope:***@10.0.0.10/edgescope'
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from edgescope.errors import ConfigError

FILENAME = "replicas.sqlite3"
SCHEMA_VERSION = 3
SQLITE_BUSY_MS = 10_000
_MYSQL_CONFLICTS = {1205, 1213}
"""Lock wait timeout and deadlock (Galera's certification failure is reported as 1213)."""

_Key = sa.String(255)
_Text = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
_Blob = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
_Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Time = sa.Float(precision=53)

metadata = sa.MetaData()
meta = sa.Table(
    "edgescope_meta",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
)
sets = sa.Table(
    "sets",
    metadata,
    sa.Column("handle", _Key, primary_key=True),
    sa.Column("record", _Text, nullable=False),
    sa.Column("version", sa.String(100)),
    sa.Column("last_write", sa.String(100)),
    sa.Column("changed", _Time, nullable=False, server_default="0"),
    sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("sets_by_change", "changed"),
)
"""One row per replica set; a deleted set stays as a tombstone (``deleted``) so that every
proxy sharing the database learns of the delete from ``changed``."""
pending = sa.Table(
    "pending",
    metadata,
    sa.Column("seq", _Seq, primary_key=True, autoincrement=True),
    sa.Column("key", _Key, nullable=False, unique=True),
    sa.Column("target", _Key, nullable=False),
    sa.Column("handle", _Key),
    sa.Column("service", sa.String(64), nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("body", _Blob, nullable=False),
    sa.Column("headers", _Text, nullable=False),
    sa.Column("hlc", sa.String(100), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, server_default="queued"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=False, server_default=""),
    sa.Column("owner", sa.String(64), nullable=False, server_default=""),
    sa.Column("size", sa.BigInteger, nullable=False, server_default="0"),
    sa.Index("pending_by_target", "target", "state", "seq"),
    sa.Index("pending_by_owner", "state", "owner"),
)
"""Queued writes; ``owner`` is who queued it (for the per-caller share of the queue's bounds)
and ``size`` the bytes it holds (body and headers), so the bounds are checked without
reading a body."""
applied = sa.Table(
    "applied",
    metadata,
    sa.Column("key", _Key, primary_key=True),
    sa.Column("state", sa.String(16), nullable=False, server_default="done"),
    sa.Column("owner", sa.String(255), nullable=False, server_default=""),
    sa.Column("until", _Time, nullable=False, server_default="0"),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("body", _Blob, nullable=False),
    sa.Column("headers", _Text, nullable=False),
    sa.Column("at", _Time, nullable=False),
    sa.Index("applied_by_time", "at"),
)
"""Idempotency keys of writes applied here: ``applying`` (claimed by ``owner`` until
``until``), then ``done`` with the answer to give again."""
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", _Key, primary_key=True),
    sa.Column("owner", sa.String(255), nullable=False),
    sa.Column("until", _Time, nullable=False),
)
"""Short exclusive leases between the proxies of a site: ``replay:<site>`` (one replayer per
target site, so its queue keeps its order) and ``set:<handle>`` (one writer per set)."""

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("seq", _Seq, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("name", _Key, nullable=False),
    sa.Column("row", _Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", _Time, nullable=False),
)
"""Stored rows that failed their checks when read (a set record, a queued write): moved
here with the reason, so the proxy starts and serves the rest; an operator inspects them."""

_ADDED = {
    ("sets", "version"): "VARCHAR(100)",
    ("sets", "changed"): "FLOAT NOT NULL DEFAULT 0",
    ("sets", "deleted"): "BOOLEAN NOT NULL DEFAULT 0",
    ("applied", "state"): "VARCHAR(16) NOT NULL DEFAULT 'done'",
    ("applied", "owner"): "VARCHAR(255) NOT NULL DEFAULT ''",
    ("applied", "until"): "FLOAT NOT NULL DEFAULT 0",
    ("pending", "owner"): "VARCHAR(64) NOT NULL DEFAULT ''",
    ("pending", "size"): "BIGINT NOT NULL DEFAULT 0",
}
"""Columns added since schema 1 (2: shared databases; 3: the queue's bounds)."""


def database_url(location: str | Path) -> str:
    """A SQLAlchemy URL from a URL or a state folder (the embedded SQLite file there)."""
    text = str(location)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).absolute() / FILENAME}"


def redact(url: str) -> str:
    """``url`` with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparsable database URL>"


def check_url(url: str) -> URL:
    """Parse ``url`` and check its driver is one we support; raises ConfigError."""
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 -- parsed lazily; a bad port raises here
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"replicas.database: not a database URL: {redact(url)!r} "
            "(e.g. sqlite:////var/lib/edgescope/replicas.sqlite3 or "
            "mysql+pymysql://edgescope:PASSWORD@10.0.0.10/edgescope)"
        ) from None
    if parsed.get_backend_name() not in ("sqlite", "mysql", "mariadb"):
        raise ConfigError(
            f"replicas.database: unsupported back end {parsed.get_backend_name()!r}; "
            "use sqlite:// or mysql+pymysql://"
        )
    return parsed


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine for ``url``; raises ConfigError for a bad URL or a missing driver."""
    parsed = check_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, read_only)
    try:
        return sa.create_engine(
            parsed,
            pool_pre_ping=True,  # a Galera node restarted or failed over behind HAProxy
            pool_recycle=600,
            pool_size=4,
            max_overflow=4,
            isolation_level="READ COMMITTED",
            connect_args={"connect_timeout": 5, "read_timeout": 30, "write_timeout": 30},
        )
    except NoSuchModuleError as exc:
        raise ConfigError(f"replicas.database: {exc}") from None
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"replicas.database: the driver {exc.name!r} is not installed "
            "(pip install pymysql, or edgescope[mysql])"
        ) from None


def _sqlite_engine(url: URL, read_only: bool) -> Engine:
    path = url.database or ""
    if read_only:
        uri = f"file:{path}?mode=ro"
        engine = sa.create_engine(
            "sqlite://",
            creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False),
            poolclass=sa.pool.StaticPool,
        )
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_MS / 1000}
        )

    @event.listens_for(engine, "connect")
    def _pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        if not read_only:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cursor.close()

    return engine


def create_schema(connection: sa.Connection) -> None:
    """Create the tables, or bring those of an older schema up to date (in one transaction)."""
    inspector = sa.inspect(connection)
    existing = set(inspector.get_table_names())
    columns = {t: {c["name"] for c in inspector.get_columns(t)} for t in existing}
    for (table, column), kind in _ADDED.items():
        if table in existing and column not in columns[table]:
            connection.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    metadata.create_all(connection, checkfirst=True)
    if "edgescope_meta" not in existing:
        connection.execute(meta.insert().values(name="schema", value=str(SCHEMA_VERSION)))


def is_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is a write conflict to retry or treat as a lost claim: a MySQL
    deadlock or lock wait (Galera's certification failures among them), SQLite busy."""
    if not isinstance(exc, DBAPIError):
        return False
    original = exc.orig
    args = getattr(original, "args", ())
    if args and isinstance(args[0], int) and args[0] in _MYSQL_CONFLICTS:
        return True
    return isinstance(original, sqlite3.OperationalError) and "locked" in str(original)
