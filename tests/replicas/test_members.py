"""Merging one resource's member answers (pure): the ranking table and its edge cases."""

from __future__ import annotations

from edgescope.replicas.members import load_rankings, merge_members
from edgescope.replicas.model import Member, ReplicaSet

SET = ReplicaSet("p1", "image", "/v2/images", (Member("Paris", "p1"), Member("Corte", "c9")))


def test_the_shipped_table_ranks_error_first_and_active_last() -> None:
    [status] = load_rankings()
    assert status.field == "status"
    assert status.rank("ERROR") < status.rank("queued") < status.rank("Active")


def test_flat_answers_and_no_ranked_field() -> None:
    merged = merge_members(SET, [("Paris", {"id": "p1", "x": 1}), ("Corte", {"id": "c9", "x": 2})])
    assert merged["x"] == 1 and merged["id"] == "p1"  # first member, in scope order
    assert merged["edgescope:site"] == "Paris & Corte"


def test_a_table_of_the_operators_own() -> None:
    rankings = load_rankings('[state]\norder = ["down", "*"]\nreport = ["down"]\n')
    answers = [("Paris", {"id": "p1", "state": "up"}), ("Corte", {"id": "c9", "state": "down"})]
    merged = merge_members(SET, answers, rankings)
    assert (
        merged["state"] == "down" and merged["edgescope:diverged"] == "state: Paris=up, Corte=down"
    )


def test_answers_that_are_not_one_object_are_left_alone() -> None:
    answers = [("Paris", {"images": []}), ("Corte", {"images": []})]
    assert merge_members(SET, answers) == {"images": []}
    assert merge_members(SET, [("Paris", None), ("Corte", {"id": "c9"})]) is None
