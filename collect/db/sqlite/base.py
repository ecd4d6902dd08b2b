"""Django's SQLite backend, with every write granted in the order it was asked for.

SQLite lets one transaction write at a time. A thread that finds the database locked sleeps
in SQLite's busy handler, for longer each try, and keeps missing the short gaps between an
import's batches: a pause could wait seconds, a second job could wait for the first to end
before its claim got in. Within the embedded server (one process: it holds a lock on its
data directory) threads instead queue here, first come first served: a transaction takes
its turn when it begins, a write outside a transaction (autocommit: a job's claim, a new
token) for its one statement. So any write waits for at most the batch in flight.
"""

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db.backends.sqlite3 import base


class FairLock:
    """A lock granted in request order; threading.Lock lets the thread that releases it
    take it straight back, as an import's next batch would."""

    def __init__(self) -> None:
        self._turns = threading.Condition()
        self._next_ticket = 0
        self._now_serving = 0
        self._asked_at: dict[int, float] = {}  # the waiting tickets, oldest first

    def acquire(self) -> None:
        with self._turns:
            ticket = self._next_ticket
            self._next_ticket += 1
            self._asked_at[ticket] = time.monotonic()
            while ticket != self._now_serving:
                self._turns.wait()
            del self._asked_at[ticket]

    def release(self) -> None:
        with self._turns:
            self._now_serving += 1
            self._turns.notify_all()

    def longest_wait(self) -> float:
        """Seconds the first thread in the queue has waited for its turn so far (0: none)."""
        with self._turns:
            oldest = next(iter(self._asked_at.values()), None)
        return 0.0 if oldest is None else time.monotonic() - oldest


WRITE_TURNS = FairLock()


def _reads_only(query: str) -> bool:
    return query.lstrip()[:6].upper() == "SELECT"


class FairCursor(base.SQLiteCursorWrapper):
    """Takes a write turn for a write in autocommit mode (a transaction already has one)."""

    def __init__(self, connection: sqlite3.Connection, wrapper: "DatabaseWrapper") -> None:
        super().__init__(connection)
        self.wrapper = wrapper

    # The signatures of Django's wrapper, which its stubs also mark as overriding sqlite3's.
    def execute(  # type: ignore[override]
        self, query: str, params: Iterable[Any] | None = None
    ) -> base.SQLiteCursorWrapper:
        if self._needs_turn(query):
            with self.wrapper.write_turn():
                return super().execute(query, params)
        return super().execute(query, params)

    def executemany(  # type: ignore[override]
        self, query: str, param_list: Iterable[Iterable[Any]]
    ) -> base.SQLiteCursorWrapper:
        if self._needs_turn(query):
            with self.wrapper.write_turn():
                return super().executemany(query, param_list)
        return super().executemany(query, param_list)

    def _needs_turn(self, query: str) -> bool:
        return not (
            self.wrapper.holds_write_turn or self.connection.in_transaction or _reads_only(query)
        )


class DatabaseWrapper(base.DatabaseWrapper):
    holds_write_turn = False

    def create_cursor(self, name: str | None = None) -> FairCursor:
        return self.connection.cursor(factory=lambda connection: FairCursor(connection, self))

    @contextmanager
    def write_turn(self) -> Iterator[None]:
        self._take_write_turn()
        try:
            yield
        finally:
            self._end_write_turn()

    # Django's private hooks below are left out of its stubs: hence the `type: ignore`s.

    def _start_transaction_under_autocommit(self) -> None:
        self._take_write_turn()  # until the transaction ends
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]
        except BaseException:
            self._end_write_turn()
            raise

    def _commit(self) -> None:
        try:
            return super()._commit()  # type: ignore[misc]
        finally:
            self._end_write_turn()

    def _rollback(self) -> None:
        try:
            return super()._rollback()  # type: ignore[misc]
        finally:
            self._end_write_turn()

    def _close(self) -> None:
        try:
            return super()._close()  # type: ignore[misc]
        finally:
            self._end_write_turn()

    def _take_write_turn(self) -> None:
        WRITE_TURNS.acquire()
        self.holds_write_turn = True

    def _end_write_turn(self) -> None:
        if self.holds_write_turn:
            self.holds_write_turn = False
            WRITE_TURNS.release()
