"""Reading jobs as a given user may see them: their own, or all for staff."""

import uuid

from django.db.models import QuerySet

from collect.errors import InvalidInput, NotFound
from collect.jobs.models import Job
from collect.jobs.states import Kind, Status

PENDING_REQUESTS = (Status.PAUSING, Status.TERMINATING)


def jobs_visible_to(user, *, status: str | None = None, kind: str | None = None) -> QuerySet[Job]:
    jobs = Job.objects.select_related("dataset")
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


def job_visible_to(user, task_id: str) -> Job:
    """The job, if this user may see it; another user's job is as absent as a missing one."""
    try:
        return jobs_visible_to(user).get(pk=uuid.UUID(str(task_id)))
    except (ValueError, Job.DoesNotExist):
        raise NotFound(f"no task {task_id}") from None


def job_has_pending_request(job_id) -> bool:
    """Whether a pause or terminate waits for the job's worker to honour it."""
    return Job.objects.filter(pk=job_id, status__in=PENDING_REQUESTS).exists()
