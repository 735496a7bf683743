"""Create neutron's SQLite schema from its models; ``site.py`` then stamps it with alembic.

neutron's alembic migrations cannot run on SQLite ("No support for ALTER of constraints in
SQLite dialect"), so the tables are built from neutron's own model metadata, as neutron's
unit tests do, and ``neutron-db-manage stamp heads`` records them as up to date.

    $ python -m edgescope.testbed._neutron_schema 'sqlite:////state/sites/Paris/data/neutron.db'
"""

from __future__ import annotations

import sys

import sqlalchemy
from neutron.db.migration.models import head  # type: ignore[import-untyped]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m edgescope.testbed._neutron_schema SQLALCHEMY_URL", file=sys.stderr)
        return 2
    metadata = head.get_metadata()
    metadata.create_all(sqlalchemy.create_engine(argv[0]))
    print(f"neutron schema: {len(metadata.tables)} tables")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
