"""collect.faults: which errors are faults of the machinery (tried again as long as they
last) and which are not. What the runner does with each is in tests/integration."""

import errno
import sqlite3

import psycopg
import pytest
from django import db

from collect import faults


def wrapped(error: Exception, wrapper: type[Exception]) -> Exception:
    """`error` as Django raises it: its own class, caused by the driver's."""
    try:
        try:
            raise error
        except Exception as cause:
            raise wrapper(str(cause)) from cause
    except Exception as outer:
        return outer


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        sqlite3.OperationalError("database is locked"),
        sqlite3.OperationalError("database or disk is full"),
        wrapped(psycopg.OperationalError("the connection is closed"), db.OperationalError),
        db.InterfaceError("connection already closed"),
        ConnectionResetError(),
    ],
    ids=repr,
)
def test_faults_of_the_machinery_are_transient(error):
    assert faults.is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("a bug"),
        IsADirectoryError(errno.EISDIR, "Is a directory"),
        sqlite3.OperationalError("no such table: segment_x"),
        wrapped(psycopg.errors.BadCopyFileFormat("extra data"), db.DataError),
        wrapped(psycopg.errors.ProgramLimitExceeded("row is too big"), db.OperationalError),
    ],
    ids=repr,
)
def test_other_errors_are_not(error):
    assert not faults.is_transient(error)


def test_a_database_locked_past_its_busy_timeout_is_transient(tmp_path):
    path = tmp_path / "locked.sqlite3"
    holder, waiter = sqlite3.connect(path), sqlite3.connect(path, timeout=0.01)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(sqlite3.OperationalError) as raised:
            waiter.execute("INSERT INTO t VALUES (1)")
    finally:
        holder.close()
        waiter.close()
    assert faults.is_transient(raised.value)
    assert faults.is_database_unreachable(raised.value)
