"""Django's SQLite backend, with write transactions granted in the order they were asked for.

SQLite lets one transaction write at a time. A thread that finds the database locked sleeps
in SQLite's busy handler, for longer each try, and keeps missing the short gaps between an
import's batches: a pause could wait seconds. Within the embedded server (one process: it
holds a lock on its data directory) threads instead queue here, first come first served, so
a control call waits for at most the batch in flight.
"""

import threading

from django.db.backends.sqlite3 import base


class FairLock:
    """A lock granted in request order; threading.Lock lets the thread that releases it
    take it straight back, as an import's next batch would."""

    def __init__(self) -> None:
        self._turns = threading.Condition()
        self._next_ticket = 0
        self._now_serving = 0

    def acquire(self) -> None:
        with self._turns:
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._now_serving:
                self._turns.wait()

    def release(self) -> None:
        with self._turns:
            self._now_serving += 1
            self._turns.notify_all()


WRITE_TURNS = FairLock()


class DatabaseWrapper(base.DatabaseWrapper):
    holds_write_turn = False

    def _start_transaction_under_autocommit(self) -> None:
        WRITE_TURNS.acquire()
        self.holds_write_turn = True
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._end_write_turn()
            raise

    def _commit(self) -> None:
        try:
            return super()._commit()
        finally:
            self._end_write_turn()

    def _rollback(self) -> None:
        try:
            return super()._rollback()
        finally:
            self._end_write_turn()

    def _close(self) -> None:
        try:
            return super()._close()
        finally:
            self._end_write_turn()

    def _end_write_turn(self) -> None:
        if self.holds_write_turn:
            self.holds_write_turn = False
            WRITE_TURNS.release()
