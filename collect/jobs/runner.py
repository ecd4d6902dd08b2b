"""The job runner: the one loop that runs any job, whoever dispatched it.

A run claims the job, then repeats: one batch of work and its checkpoint in one transaction,
together with a look at what was asked of the job meanwhile (pause, terminate). So a pause
lands after at most one batch, and a crash loses at most the batch in flight, which the
next run redoes from the last committed checkpoint.
"""

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.db import transaction

from collect.jobs import selectors, services
from collect.jobs.kinds import JobFailed, kind_for
from collect.jobs.models import Job

log = logging.getLogger(__name__)
PROCESS_ID = uuid.uuid4().hex[:8]


def worker_name() -> str:
    """Unique per runner thread, and readable: host, pid, thread."""
    return f"{socket.gethostname()}/{os.getpid()}/{threading.current_thread().name}/{PROCESS_ID}"


def run_job(
    job_id,
    *,
    worker: str,
    stop: threading.Event | None = None,
    after_batch: Callable[[Job], None] | None = None,
) -> Job | None:
    """Run the job until it completes, fails, pauses, is terminated or `stop` is set.

    Returns the job as its last batch left it, or None if it was not ours to run.
    """
    job = services.job_claim(job_id=job_id, worker=worker)
    if job is None:
        return None
    try:
        run = kind_for(job.kind).open(job)
    except JobFailed as failure:
        return services.job_fail(job_id=job_id, worker=worker, failure=failure)
    try:
        return _run_batches(job, run, worker, stop, after_batch)
    except JobFailed as failure:
        log.info("job %s failed: %s", job_id, failure.reason)
        return services.job_fail(job_id=job_id, worker=worker, failure=failure)
    except Exception as error:
        log.exception("job %s: unexpected error", job_id)
        failure = JobFailed(f"internal error: {error}")
        return services.job_fail(job_id=job_id, worker=worker, failure=failure)
    finally:
        run.close()


def _run_batches(job, run, worker, stop, after_batch) -> Job | None:
    while True:
        started = time.monotonic()
        try:
            with transaction.atomic():
                # A pause or terminate that came in while this run waited for its turn to
                # write is answered now, with an empty batch, not after another full one.
                asked = selectors.job_has_pending_request(job.pk)
                progress = run.step(
                    deadline=started + (0.0 if asked else settings.COLLECT_BATCH_SECONDS),
                    max_rows=settings.COLLECT_BATCH_ROWS,
                )
                job = services.job_commit_batch(
                    job_id=job.pk,
                    worker=worker,
                    progress=progress,
                    seconds=time.monotonic() - started,
                    stop_requested=stop is not None and stop.is_set(),
                )
        except services.TerminationRequested:
            return services.job_finish_termination(job_id=job.pk)
        except services.LostOwnership:
            log.warning("job %s: another worker owns it now; stopping this run", job.pk)
            return None
        if after_batch is not None:
            after_batch(job)
        if job.worker != worker:  # completed, paused or handed back
            return job
