"""Job states and which control call may move a job from which state (PRODUCT.md section 1)."""

from django.db import models


class Status(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSING = "pausing"
    PAUSED = "paused"
    TERMINATING = "terminating"
    TERMINATED = "terminated"
    COMPLETED = "completed"
    FAILED = "failed"


class Kind(models.TextChoices):
    IMPORT = "import"
    EXPORT = "export"


FINAL = frozenset({Status.TERMINATED, Status.COMPLETED, Status.FAILED})
# States in which a worker owns the job and must keep renewing its lease.
OWNED = frozenset({Status.RUNNING, Status.PAUSING, Status.TERMINATING})

# For each control call: the states it changes, and the states where it is a no-op
# (calling it again answers 200 with the job unchanged). Anything else is a conflict.
# Keyed by str: a job's `status` field is a plain str (a Status is one too).
PAUSE_FROM: dict[str, Status] = {Status.QUEUED: Status.PAUSED, Status.RUNNING: Status.PAUSING}
PAUSE_NOOP = frozenset({Status.PAUSING, Status.PAUSED})
# A resume that arrives before the worker has honoured a pause simply cancels the pause.
RESUME_FROM: dict[str, Status] = {Status.PAUSED: Status.QUEUED, Status.PAUSING: Status.RUNNING}
RESUME_NOOP = frozenset({Status.QUEUED, Status.RUNNING})
TERMINATE_FROM = frozenset({Status.QUEUED, Status.RUNNING, Status.PAUSING, Status.PAUSED})
TERMINATE_NOOP = frozenset({Status.TERMINATING, Status.TERMINATED})
