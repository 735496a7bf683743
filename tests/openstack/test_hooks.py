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


def test_a_lazy_lister_is_read_before_the_column_is_added() -> None:
    """``network list`` returns a generator whose request is sent only when it is read:
    the hook reads it first, so the origins of the merged answer are known."""
    from types import SimpleNamespace

    from edgescope.openstack.hooks import SiteColumnHook
    from edgescope.openstack.osc_plugin import ORIGINS_ATTRIBUTE
    from edgescope.openstack.session import OriginRecorder

    recorder = OriginRecorder()
    manager = SimpleNamespace(**{ORIGINS_ATTRIBUTE: recorder})
    hook = SiteColumnHook(SimpleNamespace(app=SimpleNamespace(client_manager=manager)))

    def rows():  # type: ignore[no-untyped-def]
        recorder.record({"networks": [{"id": "n1", "edgescope:site": "Paris & Corte"}]})
        yield ("n1", "net")

    columns, listed = hook.after(None, (("ID", "Name"), rows()))  # type: ignore[arg-type]
    assert columns == ("ID", "Name", SITE_COLUMN)
    assert listed == [("n1", "net", "Paris & Corte")]
