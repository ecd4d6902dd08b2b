"""The embedded deployment's worker pool: threads of the server process that run jobs."""

import logging
import threading
from collections.abc import Callable

from django.db import close_old_connections, connection

from collect.jobs.dispatch import InProcessDispatcher
from collect.jobs.runner import run_next_job, worker_name

log = logging.getLogger(__name__)


class WorkerPool:
    """Threads that run queued jobs, one job at a time each."""

    def __init__(self, size: int, dispatcher: InProcessDispatcher) -> None:
        self.size = size
        self.jobs = dispatcher.queue
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for number in range(self.size):
            self._spawn(self._work, f"collect-worker-{number}")

    def stop(self, timeout: float = 10.0) -> None:
        """Ask every runner to commit its batch and hand its job back, then wait for them."""
        self.stopping.set()
        for _ in range(self.size):
            self.jobs.put(None)
        for thread in self.threads:
            thread.join(timeout)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _work(self) -> None:
        while not self.stopping.is_set():
            job_id = self.jobs.get()
            if job_id is None:
                break
            try:  # the id only wakes this thread: it runs whichever job is fairest now
                run_next_job(worker=worker_name(), stop=self.stopping)
            except Exception:
                log.exception("the runner crashed (woken for job %s)", job_id)
            finally:
                close_old_connections()
        connection.close()
