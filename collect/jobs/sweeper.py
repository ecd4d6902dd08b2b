"""Periodic housekeeping, safe to run in any number of places at once: each job it acts on
is re-checked under its row lock by the service that changes it, and a job whose row is
locked is left for the next sweep, so that no sweep ever waits on one job. Capabilities add
sweeps of their own (expired uploads and exports) with `register_sweep`."""

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from uuid import UUID

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from collect.db import checkpoint_wal
from collect.db.sessions import session_end
from collect.jobs import dispatch
from collect.jobs.models import Job
from collect.jobs.services import job_expire_pause, job_recover, job_redispatch, job_wake
from collect.jobs.states import OWNED, Status

log = logging.getLogger(__name__)
_SWEEPS: dict[str, Callable[[datetime], object]] = {}


def register_sweep(sweep: Callable[[datetime], object]) -> None:
    """Run `sweep(now)` at every sweep, isolated from the others."""
    _SWEEPS[f"{sweep.__module__}.{sweep.__qualname__}"] = sweep


def sweep() -> None:
    now = timezone.now()
    tasks = (_recover_abandoned, _expire_pauses, _wake_waiting, _redispatch_queued, _checkpoint)
    for task in tasks:
        _isolated(task.__name__, partial(task, now))
    for name, registered in _SWEEPS.items():
        _isolated(name, partial(registered, now))


def _isolated(name: str, task: Callable[[], object]) -> None:
    """One failing part of the sweep (the database went away, say) stops none of the others."""
    try:
        task()
    except Exception:
        log.exception("sweep: %s failed; it runs again at the next sweep", name)
        close_old_connections()


def _checkpoint(now: datetime) -> None:
    checkpoint_wal()


def _recover_abandoned(now: datetime) -> None:
    abandoned = Job.objects.filter(status__in=OWNED, lease_expires_at__lt=now)
    for job_id, session in abandoned.values_list("pk", "worker_session"):
        log.warning("job %s: its worker stopped renewing the lease; recovering it", job_id)
        # The worker may only be frozen: end its session first, so that its open transaction
        # lets go of its locks and nothing it tries when it wakes can be written.
        _isolated(f"recovery of job {job_id}", partial(_fence_and_recover, job_id, session, now))


def _fence_and_recover(job_id: UUID, session: str, now: datetime) -> None:
    if session_end(session):
        log.warning("job %s: ended the database session of its stale worker", job_id)
    job_recover(job_id=job_id, now=now)


def _expire_pauses(now: datetime) -> None:
    deadline = now - timedelta(seconds=settings.COLLECT_PAUSE_TIMEOUT)
    for job_id in Job.objects.filter(status=Status.PAUSED, paused_at__lt=deadline).values_list(
        "pk", flat=True
    ):
        log.info("job %s: paused for too long; terminating it", job_id)
        job_expire_pause(job_id=job_id, paused_before=deadline)


def _wake_waiting(now: datetime) -> None:
    """Jobs queued again after a fault, whose wait is over."""
    for job_id in Job.objects.filter(status=Status.QUEUED, run_after__lte=now).values_list(
        "pk", flat=True
    ):
        job_wake(job_id=job_id, now=now)


def _redispatch_queued(now: datetime) -> None:
    if not dispatch.dispatcher().may_lose_messages:
        return
    stale = now - timedelta(seconds=settings.COLLECT_REDISPATCH_SECONDS)
    waiting = Job.objects.filter(status=Status.QUEUED, run_after__isnull=True, queued_at__lt=stale)
    for job_id in waiting.values_list("pk", flat=True):
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
    """Runs `sweep` every COLLECT_SWEEP_SECONDS in the background of a server or worker, and
    touches `heartbeat` (if given) after each, for a health check to look at."""

    def __init__(self, heartbeat: Path | None = None) -> None:
        super().__init__(name="collect-sweeper", daemon=True)
        self.stopping = threading.Event()
        self.heartbeat = heartbeat

    def run(self) -> None:
        while not self.stopping.wait(settings.COLLECT_SWEEP_SECONDS):
            try:
                sweep()
                if self.heartbeat is not None:
                    self.heartbeat.touch()
            except Exception:
                log.exception("the sweep failed; trying again shortly")
            finally:
                close_old_connections()
        connection.close()

    def stop(self) -> None:
        self.stopping.set()
