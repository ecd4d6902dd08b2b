"""How a job id reaches a worker: the one seam between the embedded and the distributed mode.

Dispatch only wakes a worker; the job's row says what to do. A message for a job that is not
queued any more does nothing, so losing or repeating a message is harmless.
"""

import logging
import queue
import threading
import time
from functools import cache
from uuid import UUID

from django.conf import settings
from django.db import transaction

log = logging.getLogger(__name__)
SEND_RETRY_FIRST_S = 0.5
SEND_RETRY_MAX_S = 10.0


class Dispatcher:
    # Whether a wake-up can vanish (a broker restart): then the sweeper sends it again.
    may_lose_messages = False

    def enqueue(self, job_id: UUID) -> None:
        raise NotImplementedError

    def warm_up(self) -> None:
        """Make ready now what the first job's wake-up would otherwise wait for."""


class InProcessDispatcher(Dispatcher):
    """Hands job ids to the worker threads of this process (the embedded deployment).

    Before the pool starts (a management command, say) ids are only queued here; the
    server queues every waiting job again when it starts.
    """

    def __init__(self) -> None:
        # None asks a worker thread to stop (WorkerPool.stop).
        self.queue: queue.Queue[UUID | None] = queue.Queue()

    def enqueue(self, job_id: UUID) -> None:
        self.queue.put(job_id)


class CeleryDispatcher(Dispatcher):
    """Sends job ids to `collect worker` processes through the broker, from a thread of its
    own: no request waits on the broker (one that stops answering would hold it for as long
    as that lasts), and an id that could not be sent goes out as soon as the broker is back.
    Ids still unsent when the process ends are sent again by a sweep."""

    may_lose_messages = True
    TASK = "collect.run_job"  # collect.jobs.tasks.run_job_task, named: no import of the runner

    def __init__(self) -> None:
        from collect.celery import app

        self.app = app
        self.unsent: queue.Queue[UUID] = queue.Queue()
        self._sender: threading.Thread | None = None
        self._starting = threading.Lock()

    def enqueue(self, job_id: UUID) -> None:
        self.unsent.put(job_id)
        self.warm_up()

    def warm_up(self) -> None:
        """Start the sender, which connects to the broker before the first id comes: the
        first wake-up waited 100 ms for that (the connection, the queue declared, Celery's
        result backend made), where a 300k-row import takes 0.25 s."""
        with self._starting:
            if self._sender is None or not self._sender.is_alive():
                self._sender = threading.Thread(
                    target=self._send_all, name="collect-dispatch", daemon=True
                )
                self._sender.start()

    def _send_all(self) -> None:
        self._connect()
        while True:
            job_id = self.unsent.get()
            delay = SEND_RETRY_FIRST_S
            while True:
                try:
                    self.app.send_task(self.TASK, args=[str(job_id)])  # a message is JSON
                    break
                except Exception as error:
                    log.warning("job %s: cannot reach the broker (%s); retrying", job_id, error)
                    time.sleep(delay)
                    delay = min(2 * delay, SEND_RETRY_MAX_S)

    def _connect(self) -> None:
        try:
            _ = self.app.backend  # made on first use in each thread (plugins looked up: 11 ms)
            with self.app.producer_or_acquire() as producer:  # kept in Celery's pool
                producer.maybe_declare(self.app.amqp.queues[self.app.conf.task_default_queue])
        except Exception as error:  # the broker is down: the first send waits for it instead
            log.info("not connected to the broker yet: %s", error)


@cache
def dispatcher() -> Dispatcher:
    if settings.COLLECT_DISPATCH == "celery":
        return CeleryDispatcher()
    return InProcessDispatcher()


def job_enqueue(job_id: UUID) -> None:
    """Wake a worker for the job once the transaction that queued it has committed."""
    transaction.on_commit(lambda: dispatcher().enqueue(job_id))
