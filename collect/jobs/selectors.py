"""Reading jobs as a given user may see them: their own, or all for staff."""

import re
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from collect.errors import InvalidInput, NotFound
from collect.jobs.models import Job
from collect.jobs.states import OWNED, Kind, Status

_ID_PREFIX = re.compile(r"[0-9a-fA-F-]{1,36}")
PENDING_REQUESTS = (Status.PAUSING, Status.TERMINATING)
ACTIVE = (Status.QUEUED, Status.RUNNING, Status.PAUSING, Status.PAUSED)


def jobs_visible_to(
    user: User,
    *,
    status: str | None = None,
    kind: str | None = None,
    id_prefix: str | None = None,
) -> QuerySet[Job]:
    jobs = Job.objects.select_related("dataset")
    if id_prefix:  # a task id typed short, as the command line accepts it
        if not _ID_PREFIX.fullmatch(id_prefix):
            raise InvalidInput(
                f"id_prefix {id_prefix!r} is not the start of a task id (hex digits and -)"
            )
        jobs = jobs.filter(id__istartswith=id_prefix)
    if not user.is_staff:
        jobs = jobs.filter(owner=user)
    if status:
        if status not in Status.values:
            raise InvalidInput(f"unknown status {status!r}; one of {', '.join(Status.values)}")
        jobs = jobs.filter(status=status)
    if kind:
        if kind not in Kind.values:
            raise InvalidInput(f"unknown kind {kind!r}; one of {', '.join(Kind.values)}")
        jobs = jobs.filter(kind=kind)
    return jobs


def job_visible_to(user: User, task_id: str) -> Job:
    """The job, if this user may see it; another user's job is as absent as a missing one."""
    try:
        return jobs_visible_to(user).get(pk=uuid.UUID(str(task_id)))
    except (ValueError, Job.DoesNotExist):
        raise NotFound(f"no task {task_id}") from None


def job_has_pending_request(job_id: uuid.UUID) -> bool:
    """Whether a pause or terminate waits for the job's worker to honour it. In SQL of its
    own: a running job asks this every COLLECT_WATCH_SECONDS, and the ORM's making of the
    query took 0.7 ms of the worker's CPU each time, the query itself 0.1 ms."""
    with connection.cursor() as cursor:
        key = Job._meta.pk.get_db_prep_value(job_id, connection)
        cursor.execute(_PENDING_REQUEST_SQL, [key, *PENDING_REQUESTS])
        return cursor.fetchone() is not None


_PENDING_REQUEST_SQL = "SELECT 1 FROM {table} WHERE {id} = %s AND {status} IN (%s, %s)".format(
    table=Job._meta.db_table,
    id=Job._meta.pk.column,
    status=Job._meta.get_field("status").column,
)


def jobs_fairest_first(*, limit: int) -> list[uuid.UUID]:
    """Ids of queued jobs that may run now, in the order workers should take them: first
    the jobs of users with the fewest jobs running, then the longest waiting. So one user's
    flood of jobs delays another user's by at most the jobs already running."""
    running = (
        Job.objects.filter(owner=OuterRef("owner"), status__in=OWNED)
        .values("owner")
        .annotate(count=Count("pk"))
        .values("count")
    )
    due = Q(run_after__isnull=True) | Q(run_after__lte=timezone.now())
    return list(
        Job.objects.filter(due, status=Status.QUEUED)
        .annotate(busy=Coalesce(Subquery(running), 0))
        .order_by("busy", "created_at")
        .values_list("pk", flat=True)[:limit]
    )


def jobs_active_count(owner: User) -> int:
    """The owner's jobs that hold a place: queued, running or paused."""
    return Job.objects.filter(owner=owner, status__in=ACTIVE).count()


def job_queued_reason(job: Job) -> str | None:
    """Why a queued job has not started yet, in words; None for a job that is not queued.
    The line is counted in the order jobs were made, as an estimate: workers take a user
    with fewer running jobs first (`jobs_fairest_first`), so another's may go before."""
    if job.status != Status.QUEUED:
        return None
    now = timezone.now()
    if job.run_after and job.run_after > now:
        when = job.run_after.strftime("%H:%M:%S UTC")
        return f"waiting until {when} to try again after: {job.last_error}"
    due = Q(run_after__isnull=True) | Q(run_after__lte=now)
    ahead = Job.objects.filter(due, status=Status.QUEUED, created_at__lt=job.created_at).count()
    running = Job.objects.filter(status__in=OWNED).count()
    line = f"{ahead} jobs ahead of it in line" if ahead else "it is next in line"
    if settings.COLLECT_DISPATCH != "celery":  # the server's own threads: their number is known
        workers = settings.COLLECT_WORKERS
        if running >= workers:
            return f"all {workers} workers are busy; {line}"
        return f"waiting for a free worker ({running} of {workers} busy); {line}"
    return f"waiting for a worker ({running} jobs running); {line}"


def job_pause_expires_at(job: Job) -> datetime | None:
    """When the sweeper terminates a job left paused (COLLECT_PAUSE_TIMEOUT)."""
    if job.status != Status.PAUSED or job.paused_at is None:
        return None
    return job.paused_at + timedelta(seconds=settings.COLLECT_PAUSE_TIMEOUT)
