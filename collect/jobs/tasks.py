"""The Celery task: a few lines that hand a job id to the runner, like the in-process pool.

Workers run tasks in threads (`collect worker` uses Celery's threads pool), so a warm shutdown
can ask every running job to commit its batch and go back to the queue for another worker,
instead of holding the shutdown until a long import ends.
"""

import threading

from celery import shared_task
from celery.signals import worker_shutting_down
from django.db import close_old_connections

from collect.jobs.runner import run_next_job, worker_name

shutting_down = threading.Event()


@worker_shutting_down.connect
def _hand_back_running_jobs(**_: object) -> None:
    shutting_down.set()


@shared_task(name="collect.run_job", ignore_result=True)  # dispatch.CeleryDispatcher.TASK
def run_job_task(job_id: str) -> None:
    """Woken for `job_id` (a str: the message is JSON); runs whichever queued job is fairest
    now (see job_claim_next), so the id itself is not needed."""
    try:
        run_next_job(worker=worker_name(), stop=shutting_down)
    finally:
        close_old_connections()
