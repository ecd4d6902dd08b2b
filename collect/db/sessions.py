"""Database sessions as fencing tokens: a worker records its session with the job it claims,
and whoever takes the job over ends that session first.

A worker that froze (a paused VM, a partition) keeps its transaction open, and with it the
locks that a takeover's DROP TABLE or CREATE INDEX would wait on for ever; once its session
is ended the server rolls that transaction back, and when the worker wakes up every write it
tries fails. SQLite has no sessions to end: its workers are threads of the one embedded
server, which a freeze stops whole.
"""

from django.db import connection

_SELF_SQL = (
    "SELECT pg_backend_pid(), backend_start::text FROM pg_stat_activity "
    "WHERE pid = pg_backend_pid()"
)
# Only the session that was recorded: a pid alone may belong to a new session by now.
_END_SQL = (
    "SELECT pg_terminate_backend(pid, %s) FROM pg_stat_activity "
    "WHERE pid = %s AND backend_start = %s::timestamptz AND pid <> pg_backend_pid()"
)
END_WAIT_MS = 5000


def current_session() -> str:
    """This connection's session as `pid@start`, or "" where there are no sessions."""
    if connection.vendor != "postgresql":
        return ""
    with connection.cursor() as cursor:
        cursor.execute(_SELF_SQL)
        pid, started = cursor.fetchone()
    return f"{pid}@{started}"


def session_end(session: str) -> bool:
    """End the session recorded by `current_session` if it still exists; True if it did.
    Waits (a few seconds at most) until its transaction is gone."""
    if not session or connection.vendor != "postgresql":
        return False
    pid, _, started = session.partition("@")
    with connection.cursor() as cursor:
        cursor.execute(_END_SQL, [END_WAIT_MS, int(pid), started])
        return any(ended for (ended,) in cursor.fetchall())
