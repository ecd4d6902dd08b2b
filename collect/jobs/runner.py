"""The job runner: the one loop that runs any job, whoever dispatched it.

A run claims the job, then repeats: one batch of work and its checkpoint in one transaction,
together with a look at what was asked of the job meanwhile (pause, terminate). A batch
ends early once such a request comes in (collect.jobs.watch), so a pause lands after at most
a piece of a batch, and a crash loses at most the batch in flight, which the next run redoes
from the last committed checkpoint.

Only the input's fault (JobFailed) fails a job. Any other error ends the run and hands the
job back to be tried again later: a fault of the machinery (a lost connection, a database
restart, a full disk) as often as it takes, a crash a bounded number of times in a row.
"""

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Protocol
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction

from collect import faults
from collect.db.sessions import current_session
from collect.jobs import selectors, services
from collect.jobs.kinds import Deadline, JobFailed, JobRun, kind_for
from collect.jobs.metrics import batch_observe
from collect.jobs.models import Job
from collect.jobs.watch import RequestWatch

log = logging.getLogger(__name__)
PROCESS_ID = uuid.uuid4().hex[:8]
LOST_OWNERSHIP = "another worker owns it now; this run stops without writing"
MAX_OPEN_RENEWALS = 30  # ten leases
AfterBatch = Callable[[Job], None]


class Claim(Protocol):
    """Claims a job for `worker` (services.job_claim of one job, or job_claim_next)."""

    def __call__(self, *, worker: str, session: str = "") -> Job | None: ...


def worker_name() -> str:
    """Unique per runner thread, and readable: host, pid, thread."""
    return f"{socket.gethostname()}/{os.getpid()}/{threading.current_thread().name}/{PROCESS_ID}"


def run_job(
    job_id: UUID,
    *,
    worker: str,
    stop: threading.Event | None = None,
    after_batch: AfterBatch | None = None,
) -> Job | None:
    """Run this job until it completes, fails, pauses, is terminated or `stop` is set.

    Returns the job as its last batch left it, or None if it was not ours to run (or the
    run was abandoned after an error: the job is then queued again, or taken over).
    """
    claim: Claim = partial(services.job_claim, job_id=job_id)
    return _claim_and_run(claim, worker, stop, after_batch)


def run_next_job(*, worker: str, stop: threading.Event | None = None) -> Job | None:
    """Run whichever queued job is fairest to run now (what a wake-up does), as `run_job`."""
    return _claim_and_run(services.job_claim_next, worker, stop, None)


def _claim_and_run(
    claim: Claim, worker: str, stop: threading.Event | None, after_batch: AfterBatch | None
) -> Job | None:
    try:
        job = claim(worker=worker, session=current_session())
    except Exception as error:  # the job stays queued; a sweep wakes a worker again
        log.warning("could not claim a job: %s", _describe(error))
        connection.close()
        return None
    if job is None:
        return None
    try:
        return _run(job, worker, stop, after_batch)
    except JobFailed as failure:
        log.info("job %s failed: %s", job.pk, failure.reason)
        try:
            return services.job_fail(job_id=job.pk, worker=worker, failure=failure)
        except Exception as error:  # the same failure is found again when it runs again
            _retry_later(job.pk, worker, error, stop)
            return None
    except Exception as error:
        _retry_later(job.pk, worker, error, stop)
        return None


def _run(
    job: Job, worker: str, stop: threading.Event | None, after_batch: AfterBatch | None
) -> Job | None:
    with lease_renewed(job.pk, worker):
        run = kind_for(job.kind).open(job)
    try:
        return _run_batches(job, run, worker, stop, after_batch)
    finally:
        run.close()


@contextmanager
def lease_renewed(job_id: UUID, worker: str) -> Iterator[None]:
    """Keep the job's lease while a run opens, which takes as long as it takes (a gzip file
    is read from its start up to the checkpoint); batches renew it from then on. At most
    MAX_OPEN_RENEWALS times: a run that never opens is as good as dead."""
    opened = threading.Event()

    def renew() -> None:
        try:
            for _ in range(MAX_OPEN_RENEWALS):
                if opened.wait(settings.COLLECT_LEASE_SECONDS / 3):
                    return
                services.job_renew_lease(job_id=job_id, worker=worker)
        except Exception as error:
            log.warning("job %s: could not renew its lease: %s", job_id, _describe(error))
        finally:
            connection.close()

    renewer = threading.Thread(target=renew, name=f"lease-{job_id}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        opened.set()
        renewer.join()


def _retry_later(job_id: UUID, worker: str, error: Exception, stop: threading.Event | None) -> None:
    """Hand the job back after an error that is not the input's fault. If the database is
    out of reach too, keep trying for about a lease; after that the job's lease has run out
    and a sweep (of any process) takes it back."""
    transient = faults.is_transient(error)
    reason = _describe(error)
    if transient:
        log.warning("job %s: the run ended: %s", job_id, reason)
    else:
        log.error("job %s: the run crashed", job_id, exc_info=error)
    deadline = time.monotonic() + settings.COLLECT_LEASE_SECONDS
    delay = 0.25
    while True:
        connection.close()  # a broken connection is replaced by a new one
        try:
            job = services.job_retry_later(
                job_id=job_id, worker=worker, error=reason, crashed=not transient
            )
        except Exception as again:
            if not faults.is_transient(again) or time.monotonic() + delay > deadline:
                log.warning("job %s: cannot hand it back (%s)", job_id, _describe(again))
                return None
        else:
            if job is None:
                log.warning("job %s: %s", job_id, LOST_OWNERSHIP)
            else:
                log.warning("job %s: it continues from its checkpoint later", job_id)
            return None
        if (stop or threading.Event()).wait(delay):  # shutting down: leave it to the lease
            return None
        delay = min(2 * delay, 5.0)


def _describe(error: BaseException) -> str:
    """One line for the job's `last_error`: what went wrong, without a traceback."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:500]


def _run_batches(
    job: Job,
    run: JobRun,
    worker: str,
    stop: threading.Event | None,
    after_batch: AfterBatch | None,
) -> Job | None:
    with RequestWatch(job.pk, stop) as watch:
        while True:
            try:
                job = _run_batch(job, run, worker, watch)
            except services.TerminationRequested:
                return services.job_finish_termination(job_id=job.pk)
            except services.LostOwnership:
                log.warning("job %s: %s", job.pk, LOST_OWNERSHIP)
                return None
            if after_batch is not None:
                after_batch(job)
            if job.worker != worker:  # completed, paused or handed back
                return job


def _run_batch(job: Job, run: JobRun, worker: str, watch: RequestWatch) -> Job:
    started = time.monotonic()
    with transaction.atomic():
        # A pause or terminate that came in while this run waited for its turn to write is
        # answered now, with an empty batch, not after another full one.
        asked = selectors.job_has_pending_request(job.pk)
        seconds = 0.0 if asked else settings.COLLECT_BATCH_SECONDS
        progress = run.step(
            deadline=Deadline(started + seconds, watch.cut_short),
            max_rows=settings.COLLECT_BATCH_ROWS,
        )
        job = services.job_commit_batch(
            job_id=job.pk,
            worker=worker,
            progress=progress,
            seconds=time.monotonic() - started,
            stop_requested=watch.stop.is_set(),
        )
    batch_observe(kind=job.kind, seconds=time.monotonic() - started)  # with its commit
    return job
