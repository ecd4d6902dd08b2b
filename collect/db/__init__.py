"""Database backends of Collect's own (see collect.db.sqlite)."""

from django.db import connection

from collect.db.sqlite.base import WRITE_TURNS


def writer_kept_waiting(longer_than: float) -> bool:
    """Whether a thread of this process has waited longer than `longer_than` seconds for its
    turn to write. Only SQLite, which takes one writing transaction at a time, has turns
    (collect.db.sqlite); elsewhere a transaction does not hold up every other write."""
    return WRITE_TURNS.longest_wait() > longer_than


def checkpoint_wal() -> None:
    """SQLite: copy what the write-ahead log holds into the database, as far as readers let
    it, without waiting for writers or holding them up (PASSIVE). Done here, in a sweep, the
    work and its fsync are off the commit of a job's batch. Other databases do their own."""
    # In a transaction of its own connection, SQLite refuses (a test's, say): next time.
    if connection.vendor == "sqlite" and not connection.in_atomic_block:
        connection.ensure_connection()
        # On sqlite3's connection: a PRAGMA through Django's cursor would wait for a write
        # turn, which a checkpoint does not need.
        connection.connection.execute("PRAGMA wal_checkpoint(PASSIVE)").close()
