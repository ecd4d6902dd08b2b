"""Every change of a job's state happens here, under a row lock on the job.

The control calls (pause, resume, terminate) are what users ask for; the rest is what
workers and the sweeper do with a job they own or have found abandoned.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from collect.errors import Conflict
from collect.jobs import dispatch
from collect.jobs.kinds import JobFailed, Progress, kind_for
from collect.jobs.models import Job
from collect.jobs.states import (
    OWNED,
    PAUSE_FROM,
    PAUSE_NOOP,
    RESUME_FROM,
    RESUME_NOOP,
    TERMINATE_FROM,
    TERMINATE_NOOP,
    Status,
)

PAUSE_TIMEOUT_REASON = "pause timeout"


class LostOwnership(Exception):
    """The job is no longer this worker's: its batch must be rolled back, its run abandoned."""


class TerminationRequested(Exception):
    """The job is being terminated: its current batch is rolled back, then all it wrote."""


def _locked(job_id) -> Job:
    return Job.objects.select_for_update().get(pk=job_id)


def _conflict(job: Job, action: str) -> Conflict:
    return Conflict(f"cannot {action} a job that is {job.status}", status=job.status)


def _release(job: Job) -> None:
    job.worker = ""
    job.lease_expires_at = None


def _queue(job: Job) -> None:
    """Put the job back in the queue and wake a worker once this transaction commits."""
    job.status = Status.QUEUED
    job.queued_at = timezone.now()
    dispatch.job_enqueue(job.id)


@transaction.atomic
def job_pause(*, job_id) -> Job:
    job = _locked(job_id)
    if job.status in PAUSE_NOOP:
        return job
    if job.status not in PAUSE_FROM:
        raise _conflict(job, "pause")
    job.status = PAUSE_FROM[job.status]
    if job.status == Status.PAUSED:
        job.paused_at = timezone.now()
    job.save(update_fields=["status", "paused_at"])
    return job


@transaction.atomic
def job_resume(*, job_id) -> Job:
    job = _locked(job_id)
    if job.status in RESUME_NOOP:
        return job
    if job.status not in RESUME_FROM:
        raise _conflict(job, "resume")
    if job.status == Status.PAUSED:
        _queue(job)
    else:
        job.status = RESUME_FROM[job.status]
    job.paused_at = None
    job.save()
    return job


@transaction.atomic
def job_terminate(*, job_id, by=None, reason: str = "terminated by user") -> Job:
    """Terminate: a job nobody runs is rolled back here and now; a running one by its worker."""
    job = _locked(job_id)
    if job.status in TERMINATE_NOOP:
        return job
    if job.status not in TERMINATE_FROM:
        raise _conflict(job, "terminate")
    job.terminated_by = by
    job.termination_reason = reason
    job.paused_at = None
    if job.status in OWNED:
        job.status = Status.TERMINATING
        job.save()
    else:
        _roll_back(job, Status.TERMINATED)
    return job


def _roll_back(job: Job, status: Status, error: str | None = None) -> None:
    kind_for(job.kind).discard(job)
    job.status = status
    job.error = error
    job.finished_at = timezone.now()
    job.paused_at = None
    _release(job)
    job.save()


# What workers do with the jobs they run.


def job_claim(*, job_id, worker: str) -> Job | None:
    """Take a queued job for this worker; None if it is not queued (any more)."""
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, status=Status.QUEUED).update(
        status=Status.RUNNING,
        worker=worker,
        lease_expires_at=now + timedelta(seconds=settings.COLLECT_LEASE_SECONDS),
        started_at=Coalesce("started_at", now),
    )
    return Job.objects.get(pk=job_id) if claimed else None


def job_commit_batch(
    *, job_id, worker: str, progress: Progress, seconds: float, stop_requested: bool = False
) -> Job:
    """Record a batch's checkpoint in the batch's own transaction and apply what was asked.

    Raises LostOwnership or TerminationRequested, which must roll the batch back.
    """
    job = _locked(job_id)
    if job.worker != worker or job.status not in OWNED:
        raise LostOwnership(job_id)
    if job.status == Status.TERMINATING:
        raise TerminationRequested(job_id)
    job.checkpoint = progress.checkpoint
    job.rows_done = progress.rows_done
    job.rows_rejected = progress.rows_rejected
    job.bytes_done = progress.bytes_done
    job.run_seconds += seconds
    now = timezone.now()
    job.lease_expires_at = now + timedelta(seconds=settings.COLLECT_LEASE_SECONDS)
    if progress.finished:
        kind_for(job.kind).finish(job)
        job.status = Status.COMPLETED
        job.finished_at = now
        _release(job)
    elif job.status == Status.PAUSING:
        job.status = Status.PAUSED
        job.paused_at = now
        _release(job)
    elif stop_requested:  # the worker is shutting down: hand the job back to the queue
        _queue(job)
        _release(job)
    job.save()
    return job


@transaction.atomic
def job_fail(*, job_id, worker: str | None, failure: JobFailed) -> Job | None:
    """Fail a job, roll back everything it wrote and keep why it failed."""
    job = _locked(job_id)
    if worker is not None and (job.worker != worker or job.status not in OWNED):
        return None  # someone else owns it now
    if job.status == Status.TERMINATING:
        _roll_back(job, Status.TERMINATED)
        return job
    _roll_back(job, Status.FAILED, failure.reason)
    kind_for(job.kind).record_failure(job, failure)
    return job


@transaction.atomic
def job_finish_termination(*, job_id) -> Job:
    job = _locked(job_id)
    if job.status == Status.TERMINATING:
        _roll_back(job, Status.TERMINATED)
    return job


@transaction.atomic
def job_release(*, job_id, worker: str) -> None:
    """Hand back a job this worker claimed but will not run (it is shutting down)."""
    job = _locked(job_id)
    if job.worker != worker:
        return
    if job.status == Status.RUNNING:
        _queue(job)
    elif job.status == Status.PAUSING:
        job.status = Status.PAUSED
        job.paused_at = timezone.now()
    else:
        return
    _release(job)
    job.save()


@transaction.atomic
def job_expire_pause(*, job_id, paused_before) -> Job:
    """Terminate a job that is still paused and has been since before `paused_before`."""
    job = _locked(job_id)
    if job.status == Status.PAUSED and job.paused_at and job.paused_at < paused_before:
        return job_terminate(job_id=job_id, reason=PAUSE_TIMEOUT_REASON)
    return job


@transaction.atomic
def job_recover(*, job_id, now=None) -> Job:
    """Take back a job whose worker stopped renewing its lease (it died or hung)."""
    job = _locked(job_id)
    now = now or timezone.now()
    if job.status not in OWNED or (job.lease_expires_at and job.lease_expires_at > now):
        return job
    if job.status == Status.TERMINATING:
        _roll_back(job, Status.TERMINATED)
        return job
    if job.status == Status.RUNNING:
        _queue(job)
    else:
        job.status = Status.PAUSED
        job.paused_at = now
    _release(job)
    job.save()
    return job


@transaction.atomic
def job_redispatch(*, job_id, queued_before) -> Job:
    """Wake a worker again for a job that has waited since before `queued_before`: the
    message that should have woken one may have been lost with a broker restart."""
    job = _locked(job_id)
    if job.status == Status.QUEUED and job.queued_at and job.queued_at < queued_before:
        _queue(job)
        job.save(update_fields=["status", "queued_at"])
    return job
