"""The Celery task: a few lines that hand a job id to the runner, like the in-process pool."""

from celery import shared_task
from django.db import close_old_connections

from collect.jobs.runner import run_job, worker_name


@shared_task(name="collect.run_job", ignore_result=True)
def run_job_task(job_id: str) -> None:
    try:
        run_job(job_id, worker=worker_name())
    finally:
        close_old_connections()
