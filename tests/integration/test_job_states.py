"""Every control call from every state: the new state, a no-op, or a conflict naming the state."""

from datetime import timedelta

import pytest
from django.utils import timezone

from collect.errors import Conflict
from collect.jobs import services
from collect.jobs.models import Job
from collect.jobs.states import Status
from tests.conftest import csv_bytes

pytestmark = pytest.mark.django_db(transaction=True)

PAUSE = {
    Status.QUEUED: Status.PAUSED,
    Status.RUNNING: Status.PAUSING,
    Status.PAUSING: Status.PAUSING,
    Status.PAUSED: Status.PAUSED,
}
RESUME = {
    Status.PAUSED: Status.QUEUED,
    Status.PAUSING: Status.RUNNING,
    Status.QUEUED: Status.QUEUED,
    Status.RUNNING: Status.RUNNING,
}
TERMINATE = {
    Status.QUEUED: Status.TERMINATED,
    Status.PAUSED: Status.TERMINATED,
    Status.RUNNING: Status.TERMINATING,
    Status.PAUSING: Status.TERMINATING,
    Status.TERMINATING: Status.TERMINATING,
    Status.TERMINATED: Status.TERMINATED,
}
CALLS = {
    "pause": (services.job_pause, PAUSE),
    "resume": (services.job_resume, RESUME),
    "terminate": (services.job_terminate, TERMINATE),
}


@pytest.fixture
def job_in(start_import):
    def make(status: Status) -> Job:
        job = start_import(csv_bytes([["a"], ["1"]]))
        owned = status in (Status.RUNNING, Status.PAUSING, Status.TERMINATING)
        Job.objects.filter(pk=job.pk).update(
            status=status, worker="w" if owned else "", paused_at=None
        )
        return job

    return make


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("status", Status.values)
def test_control_call(job_in, call, status):
    service, moves = CALLS[call]
    job = job_in(Status(status))
    if status in moves:
        assert service(job_id=job.pk).status == moves[status]
        assert Job.objects.get(pk=job.pk).status == moves[status]
    else:
        with pytest.raises(Conflict) as refused:
            service(job_id=job.pk)
        assert refused.value.message == f"cannot {call} a job that is {status}"
        assert refused.value.details == {"status": status}
        assert Job.objects.get(pk=job.pk).status == status


def test_pausing_a_queued_job_records_when(job_in):
    job = services.job_pause(job_id=job_in(Status.QUEUED).pk)
    assert job.paused_at is not None
    assert services.job_resume(job_id=job.pk).paused_at is None


def test_terminate_records_who_and_why(job_in, user):
    job = services.job_terminate(job_id=job_in(Status.PAUSED).pk, by=user)
    assert (job.terminated_by, job.termination_reason) == (user, "terminated by user")
    assert job.finished_at is not None


def test_a_long_queued_job_is_woken_again_and_only_then(job_in):
    job = job_in(Status.QUEUED)
    long_ago = timezone.now() - timedelta(minutes=5)
    Job.objects.filter(pk=job.pk).update(queued_at=long_ago)
    recently = timezone.now() - timedelta(minutes=10)
    assert services.job_redispatch(job_id=job.pk, queued_before=recently).queued_at == long_ago
    woken = services.job_redispatch(job_id=job.pk, queued_before=timezone.now())
    assert woken.status == Status.QUEUED and woken.queued_at > long_ago
