"""Create neutron's SQLite schema from its models; ``site.py`` then stamps it with alembic.

neutron's alembic migrations cannot run on SQLite ("No support for ALTER of constraints in
SQLite dialect"), so the tables are built from neutron's own model metadata, as neutron's
unit tests do, and ``neutron-db-manage stamp heads`` records them as up to date. The one
row a migration adds that a project needs, the default security group rule templates, is
inserted here.

    $ python -m edgescope.testbed._neutron_schema 'sqlite:////state/sites/Paris/data/neutron.db'
"""

from __future__ import annotations

import sys
import uuid

import sqlalchemy
from neutron.db.migration.models import head  # type: ignore[import-untyped]

DEFAULT_SG_RULES = (
    # (direction, ethertype, remote group, in default SGs, in other SGs): the templates that
    # migration c33da356b165 inserts and ``stamp heads`` skips. Without them a project's
    # default security group has no rule, and OVN drops all of its ports' traffic.
    ("egress", "IPv4", None, True, True),
    ("egress", "IPv6", None, True, True),
    ("ingress", "IPv4", "PARENT", True, False),
    ("ingress", "IPv6", "PARENT", True, False),
)


def insert_default_sg_rules(engine: sqlalchemy.Engine, metadata: sqlalchemy.MetaData) -> int:
    """The default security group rule templates, as the migration writes them."""
    standard = metadata.tables["standardattributes"]
    rules = metadata.tables["securitygroupdefaultrules"]
    with engine.begin() as conn:
        if conn.execute(sqlalchemy.select(sqlalchemy.func.count()).select_from(rules)).scalar():
            return 0
        for direction, ethertype, remote, in_default, in_other in DEFAULT_SG_RULES:
            row = conn.execute(
                standard.insert().values(
                    resource_type="securitygroupdefaultrules",
                    description=f"Legacy default SG rule for {direction} traffic",
                )
            )
            conn.execute(
                rules.insert().values(
                    id=str(uuid.uuid4()),
                    standard_attr_id=row.inserted_primary_key[0],  # type: ignore[index]
                    direction=direction,
                    ethertype=ethertype,
                    remote_group_id=remote,
                    used_in_default_sg=in_default,
                    used_in_non_default_sg=in_other,
                )
            )
    return len(DEFAULT_SG_RULES)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m edgescope.testbed._neutron_schema SQLALCHEMY_URL", file=sys.stderr)
        return 2
    metadata = head.get_metadata()
    engine = sqlalchemy.create_engine(argv[0])
    metadata.create_all(engine)
    added = insert_default_sg_rules(engine, metadata)
    print(f"neutron schema: {len(metadata.tables)} tables, {added} default SG rule templates")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
