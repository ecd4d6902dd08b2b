"""`collect worker`: a Celery worker of the distributed deployment, with a sweeper beside it."""

import gc
import tempfile
from pathlib import Path

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from prometheus_client import start_http_server

from collect.celery import app
from collect.jobs.priority import lower_priority
from collect.jobs.sweeper import SweeperThread

# Touched after every sweep: a container's health check tests how old it is (Celery's own
# `inspect ping` needs remote control, which Collect turns off).
HEARTBEAT = Path(tempfile.gettempdir()) / "collect-worker.heartbeat"
_sweeper = SweeperThread(heartbeat=HEARTBEAT)


@worker_ready.connect
def _start_sweeper(**_: object) -> None:
    gc.freeze()  # as in collect.server: the loaded code stays out of the collector's way
    _sweeper.start()
    if settings.COLLECT_WORKER_METRICS_PORT:
        # This process's own metrics (batch durations, collect.jobs.metrics); the jobs
        # table's are served by the web processes' /metrics, not counted once per worker.
        start_http_server(settings.COLLECT_WORKER_METRICS_PORT)


@worker_shutdown.connect
def _stop_sweeper(**_: object) -> None:
    _sweeper.stop()


def run_worker(concurrency: int | None = None, loglevel: str = "INFO") -> None:
    if settings.COLLECT_DISPATCH != "celery":
        raise SystemExit("collect worker needs CELERY_BROKER_URL (and DATABASE_URL) set")
    lower_priority(settings.COLLECT_WORKER_NICE)  # before Celery starts its threads
    app.worker_main(
        [
            "worker",
            f"--loglevel={loglevel}",
            f"--concurrency={concurrency or settings.CELERY_WORKER_CONCURRENCY}",
            "--pool=threads",  # see collect.jobs.tasks: lets a shutdown hand jobs back
            "--without-gossip",
            "--without-mingle",
        ]
    )
