"""Faults that are nobody's input's: what the runner does with a job that keeps crashing,
and files wider than the database can hold. Runs on whichever database the suite runs on.
Which errors are faults of the machinery is in tests/unit/test_fault_classification.py."""

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from collect.datasets.stores import segment_store
from collect.files import upload_path
from collect.jobs import services
from collect.jobs.models import Job
from collect.jobs.runner import lease_renewed, run_job
from collect.jobs.services import LEASE_LOST_ERROR
from collect.jobs.states import Status
from collect.jobs.sweeper import sweep
from tests.conftest import TUS, csv_bytes, segment_exists, upload_file

pytestmark = pytest.mark.django_db
# A run that crashes hands its job back on a fresh connection (collect.jobs.runner), which
# only a test whose transactions really commit survives.
CRASHES = pytest.mark.django_db(transaction=True)
WORKER = "test-worker"


def responses(rows: int = 20) -> bytes:
    return csv_bytes(
        [["id", "submitted_at"]] + [[str(n), "2024-01-01T00:00:00Z"] for n in range(rows)]
    )


def wait_is_over(job: Job) -> None:
    Job.objects.filter(pk=job.pk, run_after__isnull=False).update(
        run_after=timezone.now() - timedelta(seconds=1)
    )
    sweep()


@CRASHES
@override_settings(COLLECT_MAX_CRASHES=3)
def test_a_job_that_keeps_crashing_fails_naming_the_last_error(start_import):
    job = start_import(responses())
    stored = upload_path(job.params["path"])
    stored.unlink()
    stored.mkdir()  # opening the upload now crashes every run the same way
    try:
        waits = []
        for crash in (1, 2):
            assert run_job(job.pk, worker=WORKER) is None
            job.refresh_from_db()
            assert (job.status, job.crashes, job.worker) == (Status.QUEUED, crash, "")
            assert job.last_error.startswith("IsADirectoryError")
            waits.append(job.run_after and (job.run_after - job.queued_at).total_seconds())
            wait_is_over(job)
        assert waits == [None, 0.5]  # the first retry at once, then after a growing wait

        assert run_job(job.pk, worker=WORKER) is None
        job.refresh_from_db()
        assert job.status == Status.FAILED
        assert job.error.startswith("gave up after 3 crashes in a row at the same point")
        assert "IsADirectoryError" in job.error
        assert not segment_exists(job)
    finally:
        stored.rmdir()


@CRASHES
@override_settings(COLLECT_MAX_CRASHES=2, COLLECT_BATCH_ROWS=5)
def test_crashes_are_counted_only_in_a_row_at_the_same_point(start_import):
    job = start_import(responses(20))
    batches = []

    def crash_after_two_batches(current):
        batches.append(current.rows_done)
        if len(batches) % 2 == 0:
            raise RuntimeError("crash")

    for _ in range(5):  # each run gets further before it crashes: never "in a row"
        assert run_job(job.pk, worker=WORKER, after_batch=crash_after_two_batches) is None
        job.refresh_from_db()
        if job.status == Status.COMPLETED:
            break
        assert job.status == Status.QUEUED, job.error
        wait_is_over(job)
    job.refresh_from_db()
    assert (job.status, job.rows_done) == (Status.COMPLETED, 20)


def upload(api, content: bytes):
    return upload_file(api, content, name="wide.csv")


def wide_file(columns: int) -> bytes:
    header = [f"q{number}" for number in range(columns)]
    return csv_bytes([header, ["1"] * columns, ["2"] * columns])


def test_a_file_wider_than_the_database_holds_is_refused_at_upload(api):
    limit = segment_store().max_width()
    assert limit == (1599 if connection.vendor == "postgresql" else 1999)
    too_wide = wide_file(limit + 1)

    refused = upload(api, too_wide)
    assert refused.status_code == 400
    assert refused.json() == {
        "detail": f"the file has {limit + 1} columns; this database holds at most {limit}",
        "columns": limit + 1,
        "limit": limit,
    }
    created = api.generic(
        "POST",
        "/api/uploads/",
        too_wide[: 64 * 1024],
        content_type="application/offset+octet-stream",
        HTTP_UPLOAD_LENGTH=str(len(too_wide)),
        **TUS,
    )
    assert created.status_code == 400
    assert created.json()["limit"] == limit
    assert Job.objects.count() == 0

    accepted = upload(api, wide_file(limit))
    assert accepted.status_code == 202
    job = run_job(accepted.json()["task_id"], worker=WORKER)
    assert (job.status, job.rows_done) == (Status.COMPLETED, 2)


@pytest.mark.parametrize("on_error", ["abort", "skip"])
def test_a_nul_in_a_row_is_the_inputs_fault_on_every_database(start_import, on_error):
    """Its rejected row is kept with the NUL replaced: PostgreSQL's text cannot hold one,
    and failing to store the reason must not turn the input's fault into a crash."""
    content = b"id,submitted_at\r\n1,2024-01-01\r\n2,2024-01-\x0002\r\n3,2024-01-03\r\n"
    job = run_job(start_import(content, on_error=on_error).pk, worker=WORKER)
    rejected = list(job.rejected_rows.values_list("line", "reason", "content"))
    assert rejected == [(3, "contains a NUL character", "2,2024-01-\ufffd02")]
    if on_error == "abort":
        assert (job.status, job.error) == (Status.FAILED, "line 3: contains a NUL character")
    else:
        assert (job.status, job.rows_done, job.rows_rejected) == (Status.COMPLETED, 2, 1)


@pytest.mark.django_db(transaction=True)  # the lease is renewed from another thread
@override_settings(COLLECT_LEASE_SECONDS=0.3)
def test_a_run_keeps_its_lease_while_it_opens_however_long_that_takes(start_import):
    """Opening can take longer than a lease (a gzip file is read from its start up to the
    checkpoint): the job must not be taken back meanwhile, but is once the run is gone."""
    job = start_import(responses())
    services.job_claim(job_id=job.pk, worker=WORKER)
    with lease_renewed(job.pk, WORKER):
        for _ in range(6):  # three leases
            time.sleep(0.15)
            sweep()
    job.refresh_from_db()
    assert (job.status, job.worker) == (Status.RUNNING, WORKER)

    time.sleep(0.4)  # nobody renews it now
    sweep()
    job.refresh_from_db()
    assert (job.status, job.worker, job.last_error) == (Status.QUEUED, "", LEASE_LOST_ERROR)
