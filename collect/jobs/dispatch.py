"""How a job id reaches a worker: the one seam between the embedded and the distributed mode.

Dispatch only wakes a worker; the job's row says what to do. A message for a job that is not
queued any more does nothing, so losing or repeating a message is harmless.
"""

import logging
import queue
import threading
from functools import cache

from django.conf import settings
from django.db import close_old_connections, connection, transaction

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


class WorkerPool:
    """Threads that run queued jobs one at a time each, plus the periodic sweeper."""

    def __init__(self, size: int, dispatcher: InProcessDispatcher) -> None:
        self.size = size
        self.jobs = dispatcher.queue
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for number in range(self.size):
            self._spawn(self._work, f"collect-worker-{number}")
        self._spawn(self._sweep, "collect-sweeper")

    def stop(self, timeout: float = 10.0) -> None:
        """Ask every runner to commit its batch and hand its job back, then wait for them."""
        self.stopping.set()
        for _ in range(self.size):
            self.jobs.put(None)
        for thread in self.threads:
            thread.join(timeout)

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _work(self) -> None:
        from collect.jobs.runner import run_job, worker_name

        while not self.stopping.is_set():
            job_id = self.jobs.get()
            if job_id is None:
                break
            try:
                run_job(job_id, worker=worker_name(), stop=self.stopping)
            except Exception:
                log.exception("job %s: the runner crashed", job_id)
            finally:
                close_old_connections()
        connection.close()

    def _sweep(self) -> None:
        from collect.jobs.sweeper import sweep

        while not self.stopping.wait(settings.COLLECT_SWEEP_SECONDS):
            try:
                sweep()
            except Exception:
                log.exception("the sweep failed; trying again shortly")
            finally:
                close_old_connections()
        connection.close()
