"""The runner on an import, as a worker runs it: batches, control between them, rollback,
exactly-once after a crash. Runs on whichever database the suite runs on."""

import gzip
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from collect.errors import InvalidInput
from collect.files import upload_path
from collect.imports.models import RejectedRow
from collect.jobs import services
from collect.jobs.models import Job
from collect.jobs.runner import run_job
from collect.jobs.states import Status
from collect.jobs.sweeper import sweep
from collect.timestamps import parse_timestamp
from tests.conftest import csv_bytes, segment_exists, segment_rows
from tests.factories import job_factory

pytestmark = pytest.mark.django_db
WORKER = "test-worker"
ROWS = 1000
SMALL_BATCHES = override_settings(COLLECT_BATCH_ROWS=100)


def responses(count: int = ROWS) -> list[list[str]]:
    return [["id", "submitted_at", "comment"]] + [
        [str(n), f"2024-01-{1 + n % 28:02d}T12:00:00Z", f'comment, {n}\n"quoted"']
        for n in range(count)
    ]


def assert_imported_exactly(job, table: list[list[str]]) -> None:
    rows = segment_rows(job)
    assert [list(row[2:]) for row in rows] == table[1:]
    assert [row[1] for row in rows] == [parse_timestamp(r[1]) for r in table[1:]]
    assert len({row[0] for row in rows}) == len(rows)  # each record once


def test_an_import_runs_to_completion_with_every_value_exact(
    start_import, django_capture_on_commit_callbacks
):
    table = responses()
    job = start_import(csv_bytes(table))
    assert upload_path(job.params["path"]).exists()
    with django_capture_on_commit_callbacks(execute=True):
        job = run_job(job.pk, worker=WORKER)
    assert job.status == Status.COMPLETED
    assert (job.rows_done, job.rows_rejected) == (ROWS, 0)
    assert job.bytes_done == job.bytes_total
    assert job.worker == "" and job.finished_at is not None
    assert_imported_exactly(job, table)
    assert not upload_path(job.params["path"]).exists()  # the upload is no longer needed


def test_without_a_timestamp_column_rows_get_the_upload_time(start_import):
    job = start_import(csv_bytes([["a"], ["1"], ["2"]]))
    run_job(job.pk, worker=WORKER)
    stamps = {row[1] for row in segment_rows(job)}
    assert stamps == {job.params["default_timestamp"]}
    assert abs(stamps.pop() - job.created_at.timestamp() * 1e6) < 5e6


def test_a_named_timestamp_column_is_used(start_import):
    job = start_import(csv_bytes([["when", "x"], ["2024-02-03", "1"]]), timestamp_column="when")
    run_job(job.pk, worker=WORKER)
    assert segment_rows(job)[0][1] == parse_timestamp("2024-02-03")


@SMALL_BATCHES
def test_pause_commits_the_batch_and_stops_writing(start_import):
    table = responses()
    job = start_import(csv_bytes(table))

    paused_after = []

    def pause_after_three_batches(current):
        paused_after.append(current.rows_done)
        if len(paused_after) == 3:
            services.job_pause(job_id=current.pk)

    job = run_job(job.pk, worker=WORKER, after_batch=pause_after_three_batches)
    assert job.status == Status.PAUSED
    assert len(paused_after) == 4  # the batch under way when the pause came was committed
    assert 0 < job.rows_done == paused_after[-1] < ROWS
    assert len(segment_rows(job)) == job.rows_done
    assert job.worker == "" and job.paused_at is not None
    assert run_job(job.pk, worker=WORKER) is None  # a paused job is not run
    assert len(segment_rows(job)) == job.rows_done

    services.job_resume(job_id=job.pk)
    job = run_job(job.pk, worker=WORKER)
    assert job.status == Status.COMPLETED
    assert job.rows_done == ROWS
    assert_imported_exactly(job, table)


@SMALL_BATCHES
def test_terminate_while_running_rolls_back_every_row(
    start_import, django_capture_on_commit_callbacks
):
    job = start_import(csv_bytes(responses()))
    written = []

    def terminate_after_second_batch(current):
        written.append(len(segment_rows(current)))
        if len(written) == 2:
            services.job_terminate(job_id=current.pk, reason="changed my mind")

    with django_capture_on_commit_callbacks(execute=True):
        job = run_job(job.pk, worker=WORKER, after_batch=terminate_after_second_batch)
    assert len(written) == 2 and 0 < written[0] < written[1] < ROWS  # rows were written
    assert job.status == Status.TERMINATED
    assert job.termination_reason == "changed my mind"
    assert (job.worker, job.finished_at is not None) == ("", True)
    assert not segment_exists(job)
    assert not upload_path(job.params["path"]).exists()


@SMALL_BATCHES
def test_terminate_while_paused_rolls_back_at_once(
    start_import, django_capture_on_commit_callbacks
):
    job = start_import(csv_bytes(responses()))
    job = run_job(job.pk, worker=WORKER, after_batch=lambda j: services.job_pause(job_id=j.pk))
    assert job.status == Status.PAUSED and 0 < len(segment_rows(job)) == job.rows_done < ROWS
    with django_capture_on_commit_callbacks(execute=True):
        job = services.job_terminate(job_id=job.pk)
    assert job.status == Status.TERMINATED and job.finished_at is not None
    assert job.paused_at is None
    assert not segment_exists(job)
    assert not upload_path(job.params["path"]).exists()


def test_skip_keeps_good_rows_and_lists_the_rejected(start_import):
    data = b"id,submitted_at\n1,2024-01-01\n2\n3,2024-01-03\n4,later\n5,2024-01-05\n"
    job = run_job(start_import(data, on_error="skip").pk, worker=WORKER)
    assert job.status == Status.COMPLETED
    assert (job.rows_done, job.rows_rejected) == (3, 2)
    assert [row[2] for row in segment_rows(job)] == ["1", "3", "5"]
    rejects = list(RejectedRow.objects.filter(job=job).values_list("line", "reason"))
    assert rejects == [
        (3, "expected 2 fields, found 1"),
        (5, "column 'submitted_at' is not an ISO 8601 date-time: 'later'"),
    ]


def test_a_file_cut_off_inside_a_quoted_field_completes_with_that_record_rejected(start_import):
    # An upload cut short: its last answer is open, over two lines, and no line end follows.
    data = b'id,submitted_at,note\n1,2024-01-01,fine\n2,2024-01-02,"was cut\n\noff'
    job = run_job(start_import(data, on_error="skip").pk, worker=WORKER)
    assert job.status == Status.COMPLETED, job.error
    assert (job.rows_done, job.rows_rejected) == (1, 1)
    assert [row[2:] for row in segment_rows(job)] == [("1", "2024-01-01", "fine")]
    reject = RejectedRow.objects.get(job=job)
    assert (reject.line, reject.reason) == (
        3,
        "unclosed quote: the file ends inside a quoted field",
    )


@SMALL_BATCHES
@override_settings(COLLECT_BATCH_ROWS=100)
def test_a_row_that_is_not_utf8_where_the_check_does_not_look_is_rejected_alone(start_import):
    # The fast check reads the bytes, not their text: the store (SQLite's loader, PostgreSQL's
    # COPY) finds bad UTF-8, and the batch is read again by Python.
    lines = [f"{n},2024-01-{1 + n % 28:02d},fine {n}\n".encode() for n in range(300)]
    lines[150] = b"150,2024-01-15,caf\xe9\n"
    job = run_job(start_import(b"id,submitted_at,note\n" + b"".join(lines), on_error="skip").pk,
                  worker=WORKER)  # fmt: skip
    assert job.status == Status.COMPLETED, job.error
    assert (job.rows_done, job.rows_rejected) == (299, 1)
    assert [row[2] for row in segment_rows(job)] == [str(n) for n in range(300) if n != 150]
    reject = RejectedRow.objects.get(job=job)
    assert (reject.line, reject.reason) == (152, "is not valid UTF-8")


def test_bad_utf8_deep_in_a_batch_takes_back_the_rows_the_batch_had_stored(start_import):
    # In one batch of many blocks: SQLite's loader stored the rows before the bad bytes, then
    # its decode failed; the batch is read again, every row once.
    lines = [f"{n},2024-01-{1 + n % 28:02d},fine {n}\n".encode() for n in range(20_000)]
    lines[15_000] = b"15000,2024-01-15,caf\xe9\n"
    source = start_import(b"id,submitted_at,note\n" + b"".join(lines), on_error="skip")
    job = run_job(source.pk, worker=WORKER)
    assert job.status == Status.COMPLETED, job.error
    assert (job.rows_done, job.rows_rejected) == (19_999, 1)
    assert [row[2] for row in segment_rows(job)] == [str(n) for n in range(20_000) if n != 15_000]
    reject = RejectedRow.objects.get(job=job)
    assert (reject.line, reject.reason) == (15_002, "is not valid UTF-8")


def test_abort_fails_the_job_and_rolls_back_what_it_wrote(start_import):
    table = responses()
    table[500] = ["broken row"]
    job = run_job(start_import(csv_bytes(table)).pk, worker=WORKER)
    assert job.status == Status.FAILED
    assert job.error == "line 1000: expected 3 fields, found 1"  # records span 2 lines
    assert segment_rows(job) == []
    assert list(RejectedRow.objects.filter(job=job).values_list("line", flat=True)) == [1000]


@SMALL_BATCHES
def test_a_crashed_run_is_recovered_and_every_row_lands_once(start_import):
    table = responses()
    job = start_import(csv_bytes(table))

    class WorkerKilled(BaseException):
        pass

    def crash_after_batch(current):
        if current.rows_done >= 500:
            raise WorkerKilled

    with pytest.raises(WorkerKilled):
        run_job(job.pk, worker="doomed", after_batch=crash_after_batch)
    job.refresh_from_db()
    assert job.status == Status.RUNNING and 500 <= job.rows_done < ROWS
    assert len(segment_rows(job)) == job.rows_done

    sweep()  # the lease still holds: nothing happens yet
    assert Job.objects.get(pk=job.pk).status == Status.RUNNING
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    sweep()
    assert Job.objects.get(pk=job.pk).status == Status.QUEUED

    job = run_job(job.pk, worker="survivor")
    assert job.status == Status.COMPLETED
    assert job.rows_done == ROWS
    assert_imported_exactly(job, table)


@SMALL_BATCHES
def test_a_worker_that_lost_its_job_cannot_commit_another_batch(start_import):
    table = responses()
    job = start_import(csv_bytes(table))

    committed = []

    def lose_the_job(current):
        committed.append(current.rows_done)
        if len(committed) == 2:  # as if the lease ran out and another worker took it
            Job.objects.filter(pk=current.pk).update(worker="someone-else")

    assert run_job(job.pk, worker=WORKER, after_batch=lose_the_job) is None
    assert len(committed) == 2
    assert len(segment_rows(job)) == committed[-1]  # the next batch was rolled back


@override_settings(COLLECT_PAUSE_TIMEOUT=60)
def test_a_job_paused_too_long_is_terminated(user):
    now = timezone.now()
    patient = job_factory(user, status=Status.PAUSED, paused_at=now - timedelta(seconds=50))
    expired = job_factory(user, status=Status.PAUSED, paused_at=now - timedelta(seconds=61))
    sweep()
    assert Job.objects.get(pk=patient.pk).status == Status.PAUSED
    expired.refresh_from_db()
    assert (expired.status, expired.termination_reason) == (Status.TERMINATED, "pause timeout")
    assert (expired.paused_at, expired.terminated_by) == (None, None)
    assert expired.finished_at >= now


def test_a_resumed_job_is_not_terminated_by_its_old_pause(start_import):
    job = start_import(csv_bytes(responses()))
    services.job_pause(job_id=job.pk)
    Job.objects.filter(pk=job.pk).update(paused_at=timezone.now() - timedelta(hours=1))
    services.job_resume(job_id=job.pk)
    with override_settings(COLLECT_PAUSE_TIMEOUT=1):
        sweep()
    job = run_job(job.pk, worker=WORKER)
    assert job.status == Status.COMPLETED


def test_a_failed_source_file_fails_the_job(start_import):
    job = start_import(csv_bytes(responses(10)))
    upload_path(job.params["path"]).unlink()
    job = run_job(job.pk, worker=WORKER)
    assert job.status == Status.FAILED
    assert job.error == "the uploaded file is gone from storage"


@pytest.mark.parametrize(
    ("content", "values"),
    [
        pytest.param(b'a,b\n1,x"y\n2,"q""r"\n', [["1", 'x"y'], ["2", 'q"r']], id="bare-quote"),
        pytest.param(b"a,b\r\n1,x\n2,y\r\n", [["1", "x"], ["2", "y"]], id="mixed-line-ends"),
        pytest.param(b"a,b\n1,x\n\n2,y\n\n", [["1", "x"], ["2", "y"]], id="blank-lines"),
        pytest.param(b"a\n\\.\nz\n", [["\\."], ["z"]], id="end-of-copy-marker"),
        pytest.param(b'a,b\n1,\n2,""\n', [["1", ""], ["2", ""]], id="empty-values"),
        pytest.param(b'a,b\n1,"x\r\ny"\n', [["1", "x\r\ny"]], id="crlf-in-a-field"),
    ],
)
def test_what_python_reads_is_what_is_stored(start_import, content, values):
    job = run_job(start_import(content).pk, worker=WORKER)
    assert job.status == Status.COMPLETED
    assert [list(row[2:]) for row in segment_rows(job)] == values


@SMALL_BATCHES
def test_a_gzip_file_is_read_decompressed_and_resumes_after_a_pause(start_import):
    table = responses()
    packed = gzip.compress(csv_bytes(table))
    job = start_import(packed)
    assert job.bytes_total == len(packed)

    def pause_once(current):
        if current.rows_done >= 300 and not current.paused_at:
            services.job_pause(job_id=current.pk)

    job = run_job(job.pk, worker=WORKER, after_batch=pause_once)
    assert job.status == Status.PAUSED
    assert 0 < job.rows_done < ROWS
    assert 0 < job.bytes_done <= len(packed)
    services.job_resume(job_id=job.pk)
    job = run_job(job.pk, worker=WORKER)
    assert job.status == Status.COMPLETED
    assert job.bytes_done == job.bytes_total
    assert_imported_exactly(job, table)


@SMALL_BATCHES
def test_a_gzip_bomb_fails_at_the_limit_and_leaves_nothing(
    start_import, django_capture_on_commit_callbacks
):
    header = b"id,answer\n"
    packed = gzip.compress(header + (b"1," + b"yes" * 400 + b"\n") * 2_000)  # 2.4 MB from 4 kB
    batches = []
    # Past the header's read (1 MiB), which the limit applies to as well.
    with (
        override_settings(COLLECT_MAX_UPLOAD_BYTES=1_500_000),
        django_capture_on_commit_callbacks(execute=True),
    ):
        job = run_job(start_import(packed).pk, worker=WORKER, after_batch=batches.append)
    assert len(batches) >= 2  # batches were committed before the limit was reached
    assert job.status == Status.FAILED
    assert job.error == "the file decompresses to more than the limit of 1500000 bytes"
    assert not segment_exists(job)
    assert not upload_path(job.params["path"]).exists()


def test_a_cut_gzip_file_fails_the_job_with_the_reason(
    start_import, django_capture_on_commit_callbacks
):
    table = [[str(n), "2024-01-01", f"{n:06d}" * 250] for n in range(1_500)]  # 2.3 MB
    packed = gzip.compress(csv_bytes([["id", "submitted_at", "comment"], *table]))
    job = start_import(packed[: len(packed) // 2])  # the cut is past the header's read
    with django_capture_on_commit_callbacks(execute=True):
        job = run_job(job.pk, worker=WORKER)
    assert job.status == Status.FAILED
    assert job.error.startswith("the gzip file is damaged or cut short")
    assert not segment_exists(job)
    assert not upload_path(job.params["path"]).exists()


def test_a_gzip_file_cut_within_its_header_is_refused_at_once(start_import):
    packed = gzip.compress(csv_bytes(responses()))
    with pytest.raises(InvalidInput, match="the gzip file is damaged or cut short"):
        start_import(packed[:100])
