"""What ends a batch before its time: a request for the job, or another writer kept waiting.

A batch lasts COLLECT_BATCH_SECONDS (a few tenths of a second, so that its commit costs
little against its work), yet a pause must land much sooner than that. So while a job runs,
this watch looks out for what should end the batch in flight at once:

- on PostgreSQL, a pause or terminate of the job, committed by the API meanwhile (the
  batch holds no lock on the job's row): a thread reads the job's state every
  COLLECT_WATCH_SECONDS, with a connection of its own;
- on SQLite, any other writer of the process kept waiting for its turn (collect.db.sqlite):
  a pause cannot commit before the batch ends, nor can another job's batch, which then take
  turns at about WRITER_PATIENCE each.
"""

import logging
import threading
from types import TracebackType
from uuid import UUID

from django.conf import settings
from django.db import connection

from collect.db import writer_kept_waiting
from collect.jobs import selectors

log = logging.getLogger(__name__)
WRITER_PATIENCE = 0.02  # seconds another writer waits before a batch ends for it


class RequestWatch:
    """Use as a context around a run's batches; `cut_short()` says whether to end a batch."""

    def __init__(self, job_id: UUID, stop: threading.Event | None) -> None:
        self.job_id = job_id
        self.stop = stop or threading.Event()
        self.asked = threading.Event()
        self.done = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> "RequestWatch":
        # SQLite: a request cannot commit while a batch writes; its wait says it instead.
        if connection.vendor != "sqlite":
            self.thread = threading.Thread(
                target=self._watch, name=f"watch-{self.job_id}", daemon=True
            )
            self.thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.done.set()
        if self.thread is not None:
            self.thread.join()

    def cut_short(self) -> bool:
        return self.asked.is_set() or self.stop.is_set() or writer_kept_waiting(WRITER_PATIENCE)

    def _watch(self) -> None:
        try:
            while not self.done.wait(settings.COLLECT_WATCH_SECONDS):
                try:
                    if selectors.job_has_pending_request(self.job_id):
                        self.asked.set()
                        return
                except Exception as error:  # the run meets the same fault and deals with it
                    log.debug("job %s: cannot watch for requests: %s", self.job_id, error)
                    connection.close()
        finally:
            connection.close()
