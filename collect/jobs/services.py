"""Every change of a job's state happens here, under a row lock on the job.

The control calls (pause, resume, terminate) are what users ask for; the rest is what
workers and the sweeper do with a job they own or have found abandoned.
"""

from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from collect.errors import Conflict, TooManyJobs
from collect.jobs import dispatch, selectors
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
CLAIM_CANDIDATES = 8  # a worker tries these in turn; others may take some of them first
LEASE_LOST_ERROR = "its worker stopped renewing the lease (it died, froze or lost the database)"


class LostOwnership(Exception):
    """The job is no longer this worker's: its batch must be rolled back, its run abandoned."""


class TerminationRequested(Exception):
    """The job is being terminated: its current batch is rolled back, then all it wrote."""


def _locked(job_id: UUID) -> Job:
    return Job.objects.select_for_update().get(pk=job_id)


def _locked_unless_busy(job_id: UUID) -> Job | None:
    """The job under its row lock, or None if someone holds that lock now (a sweep must
    never wait on one job)."""
    return Job.objects.select_for_update(skip_locked=True).filter(pk=job_id).first()


def _conflict(job: Job, action: str) -> Conflict:
    return Conflict(f"cannot {action} a job that is {job.status}", status=job.status)


def _release(job: Job) -> None:
    job.worker = ""
    job.worker_session = ""
    job.lease_expires_at = None


def _queue(job: Job) -> None:
    """Put the job back in the queue and wake a worker once this transaction commits."""
    job.status = Status.QUEUED
    job.queued_at = timezone.now()
    job.run_after = None
    dispatch.job_enqueue(job.id)


def _queue_again(job: Job, now: datetime) -> None:
    """Queue a job whose run was lost: at once the first time, then after a wait that
    doubles with each run in a row that made no progress (the sweeper wakes it)."""
    if job.attempts <= 1:
        _queue(job)
        return
    delay = min(settings.COLLECT_RETRY_MAX_SECONDS, 0.5 * 2 ** (job.attempts - 2))
    job.status = Status.QUEUED
    job.queued_at = now
    job.run_after = now + timedelta(seconds=delay)


@transaction.atomic
def job_pause(*, job_id: UUID) -> Job:
    job = _locked(job_id)
    if job.status in PAUSE_NOOP:
        return job
    if job.status not in PAUSE_FROM:
        raise _conflict(job, "pause")
    job.status = PAUSE_FROM[job.status]
    if job.status == Status.PAUSED:
        job.paused_at = timezone.now()
        job.run_after = None
    job.save(update_fields=["status", "paused_at", "run_after"])
    return job


@transaction.atomic
def job_resume(*, job_id: UUID) -> Job:
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
def job_terminate(
    *, job_id: UUID, by: User | None = None, reason: str = "terminated by user"
) -> Job:
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
    job.run_after = None
    _release(job)
    job.save()


# What workers do with the jobs they run.


def job_claim(*, job_id: UUID, worker: str, session: str = "") -> Job | None:
    """Take a queued job for this worker, whose database session is `session`; None if it
    is not queued (any more), or waits after a fault. Counts the run as an attempt, and as
    a crash until it commits a batch or hands the job back."""
    now = timezone.now()
    due = Q(run_after__isnull=True) | Q(run_after__lte=now)
    claimed = Job.objects.filter(due, pk=job_id, status=Status.QUEUED).update(
        status=Status.RUNNING,
        worker=worker,
        worker_session=session,
        lease_expires_at=now + timedelta(seconds=settings.COLLECT_LEASE_SECONDS),
        started_at=Coalesce("started_at", now),
        run_after=None,
        attempts=F("attempts") + 1,
        crashes=F("crashes") + 1,
    )
    return Job.objects.get(pk=job_id) if claimed else None


def job_renew_lease(*, job_id: UUID, worker: str) -> bool:
    """Extend the lease of a job this worker still owns; False if it does not."""
    renewed = Job.objects.filter(pk=job_id, worker=worker, status__in=OWNED).update(
        lease_expires_at=timezone.now() + timedelta(seconds=settings.COLLECT_LEASE_SECONDS)
    )
    return bool(renewed)


def job_claim_next(*, worker: str, session: str = "") -> Job | None:
    """Claim the queued job that is fairest to run now (`selectors.jobs_fairest_first`);
    None if there is none. A wake-up names a job, but any worker runs whichever is next:
    every queued job has a wake-up of its own on the way, so none is left behind."""
    for job_id in selectors.jobs_fairest_first(limit=CLAIM_CANDIDATES):
        job = job_claim(job_id=job_id, worker=worker, session=session)
        if job is not None:
            return job
    return None


def job_check_room(owner: User) -> None:
    """Refuse a new job past the owner's COLLECT_MAX_ACTIVE_JOBS (queued, running or paused).
    Called in the transaction that creates the job, under a lock on the owner, so that
    concurrent requests cannot both take the last place."""
    limit = settings.COLLECT_MAX_ACTIVE_JOBS
    get_user_model().objects.select_for_update().filter(pk=owner.pk).first()
    if selectors.jobs_active_count(owner) >= limit:
        raise TooManyJobs(
            f"you have {limit} jobs queued, running or paused, the most allowed: wait for "
            "one to end, or terminate one",
            limit=limit,
        )


def job_commit_batch(
    *, job_id: UUID, worker: str, progress: Progress, seconds: float, stop_requested: bool = False
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
    job.attempts = job.crashes = 0  # this run got somewhere
    job.last_error = ""
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
def job_fail(*, job_id: UUID, worker: str | None, failure: JobFailed) -> Job | None:
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
def job_finish_termination(*, job_id: UUID) -> Job:
    job = _locked(job_id)
    if job.status == Status.TERMINATING:
        _roll_back(job, Status.TERMINATED)
    return job


@transaction.atomic
def job_retry_later(*, job_id: UUID, worker: str, error: str, crashed: bool) -> Job | None:
    """Hand back a job whose run this worker abandoned after `error`, a crash or (not
    `crashed`) a fault of the machinery: it continues from its checkpoint after a while,
    unless it has crashed too often in a row. None if the job is not this worker's."""
    job = _locked(job_id)
    if job.worker != worker or job.status not in OWNED:
        return None
    if not crashed:
        job.crashes = max(0, job.crashes - 1)
    job.last_error = error
    _after_lost_run(job, timezone.now())
    return job


def _after_lost_run(job: Job, now: datetime) -> None:
    """What becomes of a job whose run ended without committing its last batch."""
    if job.status == Status.TERMINATING:
        _roll_back(job, Status.TERMINATED)
        return
    if job.crashes >= settings.COLLECT_MAX_CRASHES:
        reason = (
            f"gave up after {job.crashes} crashes in a row at the same point of the job; "
            f"the last: {job.last_error}"
        )
        _roll_back(job, Status.FAILED, reason)
        return
    if job.status == Status.PAUSING:
        job.status = Status.PAUSED
        job.paused_at = now
    else:
        _queue_again(job, now)
    _release(job)
    job.save()


@transaction.atomic
def job_expire_pause(*, job_id: UUID, paused_before: datetime) -> Job | None:
    """Terminate a job that is still paused and has been since before `paused_before`."""
    job = _locked_unless_busy(job_id)
    if job is None or job.status != Status.PAUSED or not job.paused_at:
        return job
    if job.paused_at < paused_before:
        return job_terminate(job_id=job_id, reason=PAUSE_TIMEOUT_REASON)
    return job


@transaction.atomic
def job_recover(*, job_id: UUID, now: datetime | None = None) -> Job | None:
    """Take back a job whose worker stopped renewing its lease (it died or hung); None if
    another transaction holds the job now (try again at the next sweep)."""
    job = _locked_unless_busy(job_id)
    now = now or timezone.now()
    if job is None or job.status not in OWNED:
        return job
    if job.lease_expires_at and job.lease_expires_at > now:
        return job
    job.last_error = LEASE_LOST_ERROR
    _after_lost_run(job, now)
    return job


@transaction.atomic
def job_wake(*, job_id: UUID, now: datetime | None = None) -> Job | None:
    """Queue again a job whose wait after a fault is over, and wake a worker for it."""
    job = _locked_unless_busy(job_id)
    now = now or timezone.now()
    if job is not None and job.status == Status.QUEUED and job.run_after and job.run_after <= now:
        _queue(job)
        job.save(update_fields=["status", "queued_at", "run_after"])
    return job


@transaction.atomic
def job_redispatch(*, job_id: UUID, queued_before: datetime) -> Job | None:
    """Wake a worker again for a job that has waited since before `queued_before`: the
    message that should have woken one may have been lost with a broker restart."""
    job = _locked_unless_busy(job_id)
    if job is None or job.status != Status.QUEUED or job.run_after is not None:
        return job  # a job waiting after a fault is woken by `job_wake`
    if job.queued_at and job.queued_at < queued_before:
        _queue(job)
        job.save(update_fields=["status", "queued_at"])
    return job
