"""How a job id reaches a worker: the one seam between the embedded and the distributed mode.

Dispatch only wakes a worker; the job's row says what to do. A message for a job that is not
queued any more does nothing, so losing or repeating a message is harmless.
"""

import logging
import queue
from functools import cache

from django.conf import settings
from django.db import transaction

log = logging.getLogger(__name__)


class Dispatcher:
    # Whether a wake-up can vanish (a broker restart): then the sweeper sends it again.
    may_lose_messages = False

    def enqueue(self, job_id) -> None:
        raise NotImplementedError


class InProcessDispatcher(Dispatcher):
    """Hands job ids to the worker threads of this process (the embedded deployment).

    Before the pool starts (a management command, say) ids are only queued here; the
    server queues every waiting job again when it starts.
    """

    def __init__(self) -> None:
        self.queue: queue.Queue = queue.Queue()

    def enqueue(self, job_id) -> None:
        self.queue.put(job_id)


class CeleryDispatcher(Dispatcher):
    """Sends job ids to `collect worker` processes through the broker."""

    may_lose_messages = True

    def __init__(self) -> None:
        import collect.celery  # noqa: F401 - the configured app must exist before a task is sent

    def enqueue(self, job_id) -> None:
        from collect.jobs.tasks import run_job_task

        try:
            run_job_task.delay(str(job_id))
        except Exception:  # the job stays queued in the database; the sweeper retries
            log.exception("job %s: could not reach the broker; will send it again", job_id)


@cache
def dispatcher() -> Dispatcher:
    if settings.COLLECT_DISPATCH == "celery":
        return CeleryDispatcher()
    return InProcessDispatcher()


def job_enqueue(job_id) -> None:
    """Wake a worker for the job once the transaction that queued it has committed."""
    transaction.on_commit(lambda: dispatcher().enqueue(job_id))
