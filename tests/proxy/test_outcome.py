"""The branch rule and the strict/eventual rule of an ``&`` (pure, docs/semantics.md)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgescope.proxy.outcome import Branch, Judgement, Verdict, branch_failed, judge

OK_P = Branch("Paris", 201, False)
OK_C = Branch("Corte", 200, False)
CUT_C = Branch("Corte", None, True)
CUT_M = Branch("Marseille", None, True)
MISS_P = Branch("Paris", 404, True)
REFUSED_C = Branch("Corte", 403, True)


@pytest.mark.parametrize(
    ("status", "write", "failed"),
    [
        (200, False, False),
        (201, True, False),
        (204, True, False),
        (404, False, True),
        (503, False, True),
        (401, False, True),  # a site refusing the caller fails even a read
        (403, False, True),
        (409, False, False),  # a read's other 4xx is an answer
        (409, True, True),  # a write refused did not happen there
        (400, True, True),
    ],
)
def test_branch_failed(status: int, write: bool, failed: bool) -> None:
    assert branch_failed(status, write=write) is failed


@pytest.mark.parametrize(
    ("branches", "write", "eventual", "can_queue", "expected"),
    [
        # strict: anything short of every branch fails
        ([OK_P, CUT_C], True, False, True, Judgement(Verdict.FAILED)),
        ([OK_P, CUT_C], False, False, True, Judgement(Verdict.FAILED)),
        # eventual write: queued for the unreachable members...
        (
            [OK_P, CUT_C, CUT_M],
            True,
            True,
            True,
            Judgement(Verdict.DEGRADED, ("Corte", "Marseille")),
        ),
        # ...only when something can queue it,
        ([OK_P, CUT_C], True, True, False, Judgement(Verdict.FAILED)),
        # never when a member refused it, nor when nothing applied it
        ([OK_P, REFUSED_C, CUT_M], True, True, True, Judgement(Verdict.FAILED)),
        ([CUT_C, CUT_M], True, True, True, Judgement(Verdict.FAILED)),
        # eventual read: answered by the reachable, or their miss is the answer
        ([Branch("Paris", 200, False), CUT_C], False, True, False, Judgement(Verdict.DEGRADED)),
        ([MISS_P, CUT_C], False, True, False, Judgement(Verdict.MISSED)),
        ([MISS_P, OK_C], False, True, False, Judgement(Verdict.FAILED)),  # none unreachable
        ([CUT_C, CUT_M], False, True, False, Judgement(Verdict.FAILED)),
    ],
)
def test_judge(
    branches: list[Branch], write: bool, eventual: bool, can_queue: bool, expected: Judgement
) -> None:
    assert (
        judge(branches, ok=False, write=write, eventual=eventual, can_queue=can_queue) == expected
    )


branches = st.lists(
    st.builds(
        Branch,
        st.sampled_from(["Paris", "Corte", "Marseille", "Lyon"]),
        st.one_of(st.none(), st.sampled_from([200, 201, 404, 409, 500])),
        st.booleans(),
    ),
    min_size=1,
    max_size=4,
)


@given(branches, st.booleans(), st.booleans(), st.booleans())
def test_properties(bs: list[Branch], write: bool, eventual: bool, can_queue: bool) -> None:
    assert judge(bs, ok=True, write=write, eventual=eventual, can_queue=can_queue) == Judgement(
        Verdict.OK
    )
    verdict = judge(bs, ok=False, write=write, eventual=eventual, can_queue=can_queue)
    if not eventual:
        assert verdict == Judgement(Verdict.FAILED)
    # only unreachable members are ever queued, and only for writes
    assert set(verdict.pending) <= {b.site for b in bs if b.status is None}
    assert not verdict.pending or (write and can_queue)
