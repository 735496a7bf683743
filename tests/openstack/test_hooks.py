"""The Site column added to list commands."""

from __future__ import annotations

from edgescope.openstack.hooks import SITE_COLUMN, add_site_column


def test_site_column_is_looked_up_by_id() -> None:
    columns, rows = add_site_column(
        ("ID", "Name"),
        iter([("a", "vm1"), ("b", "vm2"), ("z", "vm3")]),
        {"a": "Paris", "b": "Corte"},
    )
    assert columns == ("ID", "Name", SITE_COLUMN)
    assert rows == [("a", "vm1", "Paris"), ("b", "vm2", "Corte"), ("z", "vm3", "")]


def test_without_an_id_column_nothing_changes() -> None:
    columns, rows = add_site_column(("Name",), [("vm1",)], {"vm1": "Paris"})
    assert columns == ("Name",) and rows == [("vm1",)]
