"""The state table (collect.jobs.states): which control call moves a job from which state,
where it is a no-op and where a conflict (PRODUCT.md section 1). The services that apply it
are tested in tests/integration/test_job_states.py."""

import pytest

from collect.jobs.states import (
    FINAL,
    OWNED,
    PAUSE_FROM,
    PAUSE_NOOP,
    RESUME_FROM,
    RESUME_NOOP,
    TERMINATE_FROM,
    TERMINATE_NOOP,
    Status,
)

S = Status
CONFLICT = "conflict"
# For every state, what each call makes of it: the new state, the same one (a no-op), or
# CONFLICT.
EXPECTED = {
    S.QUEUED: {"pause": S.PAUSED, "resume": S.QUEUED, "terminate": S.TERMINATED},
    S.RUNNING: {"pause": S.PAUSING, "resume": S.RUNNING, "terminate": S.TERMINATING},
    S.PAUSING: {"pause": S.PAUSING, "resume": S.RUNNING, "terminate": S.TERMINATING},
    S.PAUSED: {"pause": S.PAUSED, "resume": S.QUEUED, "terminate": S.TERMINATED},
    S.TERMINATING: {"pause": CONFLICT, "resume": CONFLICT, "terminate": S.TERMINATING},
    S.TERMINATED: {"pause": CONFLICT, "resume": CONFLICT, "terminate": S.TERMINATED},
    S.COMPLETED: {"pause": CONFLICT, "resume": CONFLICT, "terminate": CONFLICT},
    S.FAILED: {"pause": CONFLICT, "resume": CONFLICT, "terminate": CONFLICT},
}


def outcome(call: str, status: Status):
    """What collect.jobs.services does with the table: a no-op first, then a move."""
    if call == "pause":
        return status if status in PAUSE_NOOP else PAUSE_FROM.get(status, CONFLICT)
    if call == "resume":
        return status if status in RESUME_NOOP else RESUME_FROM.get(status, CONFLICT)
    if status in TERMINATE_NOOP:
        return status
    if status not in TERMINATE_FROM:
        return CONFLICT
    # Nobody runs a queued or paused job: it ends at once; a worker ends an owned one.
    return S.TERMINATING if status in OWNED else S.TERMINATED


def test_every_state_is_in_the_table():
    assert set(EXPECTED) == set(Status)


@pytest.mark.parametrize("call", ["pause", "resume", "terminate"])
@pytest.mark.parametrize("status", list(Status))
def test_each_call_from_each_state(call, status):
    assert outcome(call, status) == EXPECTED[status][call]


def test_no_state_is_both_a_move_and_a_no_op():
    assert not set(PAUSE_FROM) & PAUSE_NOOP
    assert not set(RESUME_FROM) & RESUME_NOOP
    assert not TERMINATE_FROM & TERMINATE_NOOP


def test_final_states_are_never_left():
    assert set(FINAL) == {S.COMPLETED, S.FAILED, S.TERMINATED}
    for status in FINAL:
        assert status not in PAUSE_FROM and status not in RESUME_FROM
        assert status not in TERMINATE_FROM
    assert set(OWNED) == {S.RUNNING, S.PAUSING, S.TERMINATING}
    assert not OWNED & FINAL
