"""Faults only PostgreSQL has: its server ends a session (a failover, a restart, a network
blip, pg_terminate_backend). Collected only when the suite runs on PostgreSQL."""

import psycopg
import pytest
from django import db
from django.db import connection
from django.test import override_settings

from collect import faults
from collect.jobs.runner import run_job
from collect.jobs.states import Status
from tests.conftest import csv_bytes

pytestmark = pytest.mark.django_db
# A session ended by the server takes the test's own transaction with it: only a test whose
# transactions really commit survives that.
SESSION_ENDS = pytest.mark.django_db(transaction=True)
WORKER = "test-worker"


def end_this_session() -> None:
    """What a failover does to the connection of this thread, done from another one."""
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        dbname=settings["NAME"],
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])


@SESSION_ENDS
def test_a_session_ended_by_the_server_is_a_transient_fault():
    end_this_session()
    with pytest.raises(db.Error) as raised:
        connection.cursor().execute("SELECT 1")
    connection.close()
    assert faults.is_transient(raised.value)
    assert faults.is_database_unreachable(raised.value)
    assert not isinstance(raised.value, db.DataError)  # not "COPY refused the bytes"


@SESSION_ENDS
@override_settings(COLLECT_BATCH_ROWS=5)
def test_a_run_whose_session_ends_hands_the_job_back_uncounted(start_import):
    rows = [["id", "submitted_at"]] + [[str(n), "2024-01-01T00:00:00Z"] for n in range(20)]
    job = start_import(csv_bytes(rows))
    ended = []

    def end_the_session_once(current):
        if not ended:
            ended.append(current.rows_done)
            end_this_session()

    assert run_job(job.pk, worker=WORKER, after_batch=end_the_session_once) is None
    job.refresh_from_db()
    # Not the job's fault: no crash counted, queued again at once, from its checkpoint.
    assert (job.status, job.crashes, job.rows_done) == (Status.QUEUED, 0, ended[0])
    assert job.last_error.startswith("OperationalError")
    assert job.run_after is None

    job = run_job(job.pk, worker=WORKER)
    assert (job.status, job.rows_done, job.last_error) == (Status.COMPLETED, 20, "")


def test_a_record_too_big_for_a_row_fails_the_import_with_the_reason(start_import):
    """1,599 columns fit PostgreSQL's table, not their values: too many short ones (which
    cannot be moved out of the row) pass its 8 kB row limit. The input's fault, not a crash."""
    width = 1599
    header = [f"q{number}" for number in range(width)]
    job = start_import(csv_bytes([header, ["0123456789"] * width]))
    job = run_job(job.pk, worker=WORKER)
    assert job.status == Status.FAILED
    assert job.error.startswith("a record is too big for the database: row is too big")
