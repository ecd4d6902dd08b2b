"""Telling a fault of the machinery from a fault of the work (PRODUCT.md section 1).

A dropped connection, a database restarting, a lock held too long, a full disk: the work
was fine and will succeed once the fault is gone, so a job keeps its rows and is tried
again later. Anything else is either the input's fault (the kinds raise JobFailed for that)
or a crash, which is retried a bounded number of times.
"""

import errno
import sqlite3
from collections.abc import Iterator

import psycopg
from django import db

# SQLSTATE classes and codes of PostgreSQL that say "not now", not "never".
_TRANSIENT_SQLSTATE_CLASSES = frozenset(
    {
        "08",  # connection exception
        "53",  # insufficient resources: disk full, out of memory, too many connections
        "58",  # system error: I/O error
    }
)
_TRANSIENT_SQLSTATES = frozenset(
    {
        "57P01",  # admin_shutdown: the server is stopping, or pg_terminate_backend
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now: the server is starting up or shutting down
        "57P05",  # idle_session_timeout
        "25P03",  # idle_in_transaction_session_timeout
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available: lock_timeout
        "57014",  # query_canceled: statement_timeout
    }
)
_TRANSIENT_SQLITE_MESSAGES = (
    "database is locked",
    "database or disk is full",
    "disk i/o error",
    "unable to open database file",
)
_TRANSIENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EAGAIN, errno.ENOMEM, errno.ESTALE}
)
_NETWORK_ERRORS = (ConnectionError, TimeoutError)


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and what caused it: Django wraps the driver's errors."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        yield cause
        cause = cause.__cause__ or cause.__context__


def is_transient(error: BaseException) -> bool:
    """Whether `error` is a fault of the machinery that should pass by itself."""
    return any(_is_transient_itself(cause) for cause in _causes(error))


def _is_transient_itself(error: BaseException) -> bool:
    if isinstance(error, psycopg.Error):
        state = error.sqlstate
        if state is None:  # raised by the client: the connection is lost or closed
            return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)
        return state[:2] in _TRANSIENT_SQLSTATE_CLASSES or state in _TRANSIENT_SQLSTATES
    if isinstance(error, sqlite3.OperationalError):
        return str(error).lower().startswith(_TRANSIENT_SQLITE_MESSAGES)
    if isinstance(error, db.InterfaceError):  # "connection already closed"
        return True
    if isinstance(error, _NETWORK_ERRORS):
        return True
    if isinstance(error, OSError):
        return error.errno in _TRANSIENT_ERRNOS
    return _is_broker_fault(error)


def _is_broker_fault(error: BaseException) -> bool:
    import kombu.exceptions
    import redis.exceptions

    return isinstance(error, kombu.exceptions.OperationalError | redis.exceptions.ConnectionError)


def is_database_unreachable(error: BaseException) -> bool:
    """Whether `error` says the database cannot be reached or used right now (not: the
    query was wrong), which the API answers with 503 and Retry-After."""
    for cause in _causes(error):
        if isinstance(cause, db.InterfaceError):
            return True
        if isinstance(cause, psycopg.Error) and _is_transient_itself(cause):
            return True
        if isinstance(cause, sqlite3.OperationalError) and _is_transient_itself(cause):
            return True
    return False


def is_disk_full(error: BaseException) -> bool:
    """Whether `error` says a disk (the server's or the database's) has no room left."""
    return any(_is_disk_full_itself(cause) for cause in _causes(error))


def _is_disk_full_itself(error: BaseException) -> bool:
    if isinstance(error, OSError) and not isinstance(error, _NETWORK_ERRORS):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(error, sqlite3.OperationalError):
        return str(error).lower().startswith("database or disk is full")
    return isinstance(error, psycopg.Error) and error.sqlstate == "53100"
