"""The control services from every state, on the database: the new state and exactly the
fields that change with it, a no-op that changes nothing, or a conflict naming the state;
and the wake-ups a worker gets. The state table itself is in tests/unit/test_state_table.py."""

from datetime import timedelta

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone

from collect.errors import Conflict
from collect.jobs import services
from collect.jobs.models import Job
from collect.jobs.states import Kind, Status
from collect.jobs.sweeper import sweep
from tests.factories import job_factory

pytestmark = pytest.mark.django_db

S = Status
NOW = object()  # a field set to the time of the call
BY_USER = "terminated by user"
CALLS = {
    "pause": services.job_pause,
    "resume": services.job_resume,
    "terminate": services.job_terminate,
}
# (call, state): the fields the call changes, with their new values; absent: a conflict.
CHANGES = {
    ("pause", S.QUEUED): {"status": S.PAUSED, "paused_at": NOW},
    ("pause", S.RUNNING): {"status": S.PAUSING},
    ("pause", S.PAUSING): {},
    ("pause", S.PAUSED): {},
    ("resume", S.PAUSED): {"status": S.QUEUED, "paused_at": None, "queued_at": NOW},
    ("resume", S.PAUSING): {"status": S.RUNNING},
    ("resume", S.QUEUED): {},
    ("resume", S.RUNNING): {},
    # Nobody runs a queued or paused job: it is rolled back at once, and let go of.
    ("terminate", S.QUEUED): {
        "status": S.TERMINATED,
        "finished_at": NOW,
        "termination_reason": BY_USER,
    },
    ("terminate", S.PAUSED): {
        "status": S.TERMINATED,
        "finished_at": NOW,
        "paused_at": None,
        "termination_reason": BY_USER,
    },
    # A worker owns a running job: it rolls the job back at its next batch.
    ("terminate", S.RUNNING): {"status": S.TERMINATING, "termination_reason": BY_USER},
    ("terminate", S.PAUSING): {"status": S.TERMINATING, "termination_reason": BY_USER},
    ("terminate", S.TERMINATING): {},
    ("terminate", S.TERMINATED): {},
}
# The one call that puts a job back in the queue, and so wakes a worker.
WAKES = {("resume", S.PAUSED)}


def fields(job: Job) -> dict:
    return model_to_dict(Job.objects.get(pk=job.pk), exclude=[])


def changed(before: dict, after: dict) -> dict:
    return {name: after[name] for name in after if after[name] != before[name]}


@pytest.mark.parametrize("kind", Kind.values)
@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("status", Status.values)
def test_control_call(user, django_capture_on_commit_callbacks, sent_wakeups, kind, call, status):
    job = job_factory(user, kind, status)
    before = fields(job)
    called = timezone.now()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        if (call, status) in CHANGES:
            returned = CALLS[call](job_id=job.pk)
        else:
            with pytest.raises(Conflict) as refused:
                CALLS[call](job_id=job.pk)
    after = fields(job)

    if (call, status) not in CHANGES:
        assert refused.value.message == f"cannot {call} a job that is {status}"
        assert refused.value.details == {"status": status}
        assert after == before
        assert callbacks == []
        return
    expected = CHANGES[call, status]
    assert set(changed(before, after)) == set(expected)
    for name, value in expected.items():
        if value is NOW:
            assert called <= after[name] <= timezone.now(), name
        else:
            assert after[name] == value, name
    assert model_to_dict(returned, exclude=[]) == after
    woken = sent_wakeups.job_ids(
        of=[job.pk], expected=1 if (call, status) in WAKES else 0, timeout=2
    )
    assert woken == ([str(job.pk)] if (call, status) in WAKES else [])


def test_terminate_records_who(user):
    job = services.job_terminate(job_id=job_factory(user, status=S.PAUSED).pk, by=user)
    assert (job.terminated_by, job.termination_reason) == (user, BY_USER)
    assert Job.objects.get(pk=job.pk).terminated_by == user


def test_a_long_queued_job_is_woken_again_and_only_then(
    user, django_capture_on_commit_callbacks, sent_wakeups
):
    long_ago = timezone.now() - timedelta(minutes=5)
    job = job_factory(user, queued_at=long_ago)
    recently = timezone.now() - timedelta(minutes=10)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        unchanged = services.job_redispatch(job_id=job.pk, queued_before=recently)
    assert (unchanged.status, unchanged.queued_at, callbacks) == (S.QUEUED, long_ago, [])
    assert sent_wakeups.job_ids(of=[job.pk], expected=0, timeout=0.5) == []

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        woken = services.job_redispatch(job_id=job.pk, queued_before=timezone.now())
    assert woken.status == S.QUEUED and woken.queued_at > long_ago
    assert Job.objects.get(pk=job.pk).queued_at == woken.queued_at
    assert len(callbacks) == 1
    assert sent_wakeups.job_ids(of=[job.pk], expected=1) == [str(job.pk)]


@pytest.mark.parametrize(
    "state",
    [
        {"status": S.PAUSED},
        {"status": S.RUNNING},
        {"status": S.QUEUED, "run_after": timezone.now() + timedelta(minutes=1)},
    ],
    ids=["paused", "running", "waiting-after-a-fault"],
)
def test_only_a_job_queued_and_due_is_woken_again(
    user, django_capture_on_commit_callbacks, sent_wakeups, state
):
    long_ago = timezone.now() - timedelta(minutes=5)
    job = job_factory(user, queued_at=long_ago, **state)
    before = fields(job)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.job_redispatch(job_id=job.pk, queued_before=timezone.now())
    assert (fields(job), callbacks) == (before, [])
    assert sent_wakeups.job_ids(of=[job.pk], expected=0, timeout=0.5) == []


def test_the_sweep_wakes_long_queued_jobs_where_messages_can_be_lost(
    user, django_capture_on_commit_callbacks, sent_wakeups, settings
):
    """A broker may lose a wake-up (a restart): the sweep sends it again. The in-process
    queue loses none, and the sweep sends nothing there."""
    settings.COLLECT_REDISPATCH_SECONDS = 60
    stale = job_factory(user, queued_at=timezone.now() - timedelta(minutes=2))
    fresh = job_factory(user, queued_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        sweep()
    if sent_wakeups.dispatcher.may_lose_messages:
        assert sent_wakeups.job_ids(of=[stale.pk, fresh.pk], expected=1) == [str(stale.pk)]
        assert Job.objects.get(pk=stale.pk).queued_at > stale.queued_at
    else:
        assert sent_wakeups.job_ids(of=[stale.pk, fresh.pk], expected=0) == []
        assert Job.objects.get(pk=stale.pk).queued_at == stale.queued_at
    assert Job.objects.get(pk=fresh.pk).queued_at == fresh.queued_at
