"""Periodic housekeeping, safe to run in any number of places at once: each job it acts on
is re-checked under its row lock by the service that changes it."""

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from collect.jobs import dispatch
from collect.jobs.kinds import all_kinds
from collect.jobs.models import Job
from collect.jobs.services import job_expire_pause, job_recover, job_redispatch
from collect.jobs.states import OWNED, Status
from collect.uploads.services import upload_sweep

log = logging.getLogger(__name__)


def sweep() -> None:
    now = timezone.now()
    for job_id in Job.objects.filter(status__in=OWNED, lease_expires_at__lt=now).values_list(
        "pk", flat=True
    ):
        log.warning("job %s: its worker stopped renewing the lease; recovering it", job_id)
        job_recover(job_id=job_id, now=now)
    deadline = now - timedelta(seconds=settings.COLLECT_PAUSE_TIMEOUT)
    for job_id in Job.objects.filter(status=Status.PAUSED, paused_at__lt=deadline).values_list(
        "pk", flat=True
    ):
        log.info("job %s: paused for too long; terminating it", job_id)
        job_expire_pause(job_id=job_id, paused_before=deadline)
    for kind in all_kinds():
        kind.sweep()
    upload_sweep(now)
    if dispatch.dispatcher().may_lose_messages:
        stale = now - timedelta(seconds=settings.COLLECT_REDISPATCH_SECONDS)
        for job_id in Job.objects.filter(status=Status.QUEUED, queued_at__lt=stale).values_list(
            "pk", flat=True
        ):
            job_redispatch(job_id=job_id, queued_before=stale)


def recover_all_after_restart() -> None:
    """For a worker pool that knows it is the only one (the embedded server): every job that
    claims to be running was left by a previous process, so take it back now, then queue
    everything that waits."""
    Job.objects.filter(status__in=OWNED).update(lease_expires_at=timezone.now())
    sweep()
    for job_id in (
        Job.objects.filter(status=Status.QUEUED).order_by("created_at").values_list("pk", flat=True)
    ):
        dispatch.dispatcher().enqueue(job_id)


class SweeperThread(threading.Thread):
    """Runs `sweep` every COLLECT_SWEEP_SECONDS in the background of a server or worker."""

    def __init__(self) -> None:
        super().__init__(name="collect-sweeper", daemon=True)
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(settings.COLLECT_SWEEP_SECONDS):
            try:
                sweep()
            except Exception:
                log.exception("the sweep failed; trying again shortly")
            finally:
                close_old_connections()
        connection.close()

    def stop(self) -> None:
        self.stopping.set()
