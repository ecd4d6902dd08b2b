"""Export jobs on whichever database the suite runs on: exact round trips, range boundaries,
pause and resume without a row twice or missing, terminate, formula cells, visibility."""

import csv
import io
import os
import subprocess
import time
import uuid
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from collect.datasets.cells import neutralised
from collect.datasets.models import Segment
from collect.datasets.stores.postgres import MAX_NEUTRALISED_IN_SQL
from collect.exports.storage import DROP_BEHIND_BYTES, LocalWriter, export_dir, piece_path
from collect.jobs import services
from collect.jobs.models import Job
from collect.jobs.runner import run_job
from collect.jobs.states import Status
from collect.jobs.sweeper import sweep
from tests.conftest import client_for, csv_bytes, segment_rows
from tests.factories import job_factory

pytestmark = pytest.mark.django_db
WORKER = "test-worker"
NASTY = [
    ["id", "submitted_at", "text", "note"],
    ["1", "2024-01-01T00:00:00Z", "comma, inside", 'quote "inside"'],
    ["2", "2024-01-01T12:00:00+02:00", "new\nline", "crlf\r\ninside"],
    ["3", "2024-01-01 23:59:59.999999", "", "  spaces kept  "],
    ["4", "2024-01-02", "ünïcödé ✓ 日本", "=1+2"],
    ["5", "2024-01-02T00:00:00Z", '"', ","],
]


def imported(start_import, table, **options):
    job = run_job(start_import(csv_bytes(table), **options).pk, worker=WORKER)
    assert job.status == Status.COMPLETED
    return job


def export(api, **body):
    response = api.post("/api/exports/", body, format="json")
    assert response.status_code == 202, response.json()
    return response.json()["task_id"]


def exported(api, task_id: str, run: bool = True) -> list[list[str]]:
    if run:
        assert run_job(task_id, worker=WORKER).status == Status.COMPLETED
    response = api.get(f"/api/tasks/{task_id}/download/")
    assert response.status_code == 200
    content = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.reader(io.StringIO(content, newline="")))


def test_an_export_of_everything_gives_back_exactly_what_was_imported(api, start_import):
    imported(start_import, NASTY)
    task_id = export(api, **{"from": "2000-01-01", "to": "2100-01-01", "raw": True})
    assert exported(api, task_id) == NASTY
    job = api.get(f"/api/tasks/{task_id}/").json()
    assert job["kind"] == "export" and job["progress"]["rows_done"] == 5
    assert job["download_url"].endswith(f"/api/tasks/{task_id}/download/")


@pytest.mark.parametrize(
    ("start", "end", "ids"),
    [
        ("2024-01-01", "2024-01-01", ["1", "3"]),  # +02:00 is the day before in UTC
        ("2024-01-02", "2024-01-02", ["4", "5"]),
        ("2023-12-31", "2023-12-31", ["2"]),
        ("2023-12-30", "2023-12-30", []),
        ("2024-01-01T00:00:00Z", "2024-01-01T23:59:59.999999", ["1", "3"]),
        ("2024-01-01T00:00:00.000001Z", "2024-01-02", ["3", "4", "5"]),
    ],
)
def test_range_ends_are_inclusive_days_in_utc(api, start_import, start, end, ids):
    table = [row[:2] for row in NASTY]
    table[2][1] = "2023-12-31T23:00:00+02:00"  # 21:00 UTC on the 31st
    imported(start_import, table)
    rows = exported(api, export(api, **{"from": start, "to": end}))
    assert rows[0] == ["id", "submitted_at"]
    assert [row[0] for row in rows[1:]] == ids


def test_columns_can_be_chosen_and_formulas_are_neutralised(api, start_import):
    imported(start_import, NASTY)
    body = {"from": "2024-01-01", "to": "2024-01-02", "columns": ["note", "id"]}
    rows = exported(api, export(api, **body))
    assert rows[0] == ["note", "id"]
    assert rows[4] == ["'=1+2", "4"]
    cells = [["=SUM(A1)", "+1", "-1", "@cmd", "\tx", "\rx", "plain", "a=b"]]
    table = [[f"c{n}" for n in range(8)], *cells]
    imported(start_import, table, dataset="formulas")
    rows = exported(
        api, export(api, dataset="formulas", **{"from": "2000-01-01", "to": "2100-01-01"})
    )
    assert rows[1] == ["'=SUM(A1)", "'+1", "'-1", "'@cmd", "'\tx", "'\rx", "plain", "a=b"]


# Columns of cells near the trouble: more of them than PostgreSQL neutralises in SQL.
TRICKY = [f"t{number}" for number in range(MAX_NEUTRALISED_IN_SQL + 1)]


@pytest.mark.parametrize(
    "columns",
    [
        ["id", TRICKY[0]],  # few: PostgreSQL neutralises them in SQL
        [TRICKY[1], "id", *TRICKY[2:], TRICKY[0]],  # many: the worker, in COPY's quoted cells
    ],
)
def test_formula_cells_near_quotes_commas_and_line_ends_are_neutralised_exactly(
    api, start_import, columns
):
    cells = ["=1", '"=1', 'a,"=b', "x\n=y", '-"', ",", '"', "", "\r\n", "\tt", "@", "'=", "+,"]
    table = [["id", "submitted_at", *TRICKY]]
    table += [
        [str(n), "2024-01-01", *(cells[(n + shift) % len(cells)] for shift in range(len(TRICKY)))]
        for n in range(len(cells) * 3)
    ]
    imported(start_import, table, dataset="tricky")
    body = {"dataset": "tricky", "from": "2024-01-01", "to": "2024-01-01", "columns": columns}
    rows = exported(api, export(api, **body))
    places = [table[0].index(name) for name in columns]
    assert rows == [columns] + [[neutralised(row[place]) for place in places] for row in table[1:]]


def test_the_catalog_says_which_columns_an_export_neutralises(api, start_import):
    table = [["id", "submitted_at", "note", "other"]]
    table += [[str(n), "2024-01-01", "plain" if n % 50 else "=1+2", "a-b, @c"] for n in range(300)]
    segment = Segment.objects.get(job=imported(start_import, table))
    assert segment.formula_columns == [2]  # "note": its cells, not the quoted comma and at

    def first_formula() -> list[str]:
        rows = exported(api, export(api, **{"from": "2024-01-01", "to": "2024-01-01"}))
        return rows[1]

    assert first_formula() == ["0", "2024-01-01", "'=1+2", "a-b, @c"]
    Segment.objects.filter(pk=segment.pk).update(formula_columns=[])  # the export trusts it
    assert first_formula() == ["0", "2024-01-01", "=1+2", "a-b, @c"]
    Segment.objects.filter(pk=segment.pk).update(formula_columns=None)  # not known: any may
    assert first_formula() == ["0", "2024-01-01", "'=1+2", "a-b, @c"]


@override_settings(COLLECT_BATCH_ROWS=50)
def test_pause_and_resume_write_every_row_once(api, start_import):
    table = [["id", "submitted_at"]] + [[str(n), "2024-02-01T10:00:00Z"] for n in range(1000)]
    imported(start_import, table)
    task_id = export(api, **{"from": "2024-02-01", "to": "2024-02-01"})
    batches = []

    def pause_after_third_batch(job):
        batches.append(job.rows_done)
        if len(batches) == 3:
            services.job_pause(job_id=job.pk)

    job = run_job(task_id, worker=WORKER, after_batch=pause_after_third_batch)
    assert job.status == Status.PAUSED and 0 < job.rows_done < 1000
    [(name, size)] = job.checkpoint["pieces"]
    assert piece_path(name).stat().st_size == size
    with open(piece_path(name), "ab") as stream:  # what a crash after a write leaves
        stream.write(b"999999,half a batch that was never committed\n")
    services.job_resume(job_id=job.pk)
    assert exported(api, task_id) == table
    assert [piece[0] for piece in Job.objects.get(pk=task_id).checkpoint["pieces"]] == [name]


@override_settings(COLLECT_BATCH_ROWS=50)
def test_after_a_lost_run_the_export_goes_on_in_a_new_piece_that_a_stale_writer_cannot_touch(
    api, start_import
):
    table = [["id", "submitted_at"]] + [[str(n), "2024-02-01T10:00:00Z"] for n in range(1000)]
    imported(start_import, table)
    task_id = export(api, **{"from": "2024-02-01", "to": "2024-02-01"})
    batches = []

    def vanish_after_third_batch(job):  # as a worker that froze after its third batch
        batches.append(job.rows_done)
        if len(batches) == 3:
            raise WorkerFroze

    with pytest.raises(WorkerFroze):
        run_job(task_id, worker="frozen", after_batch=vanish_after_third_batch)
    Job.objects.filter(pk=task_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    sweep()  # takes the job back
    [(stale_name, _)] = Job.objects.get(pk=task_id).checkpoint["pieces"]

    job = run_job(task_id, worker=WORKER)
    assert job.status == Status.COMPLETED
    with open(piece_path(stale_name), "ab") as stream:  # the frozen worker wakes and writes
        stream.write(b"999999,written by a worker that lost the job\n")
    stale, fresh = (name for name, _ in job.checkpoint["pieces"])
    assert stale == stale_name and fresh != stale_name
    assert exported(api, task_id, run=False) == table


class WorkerFroze(BaseException):
    pass


def pause_at_once(job) -> None:
    services.job_pause(job_id=job.pk)


def test_an_export_file_written_to_disk_leaves_the_page_cache():
    """An export is written once and downloaded later: once on disk, its pages go from the
    cache (they would push the database's out), without a byte of the file lost."""
    writer = LocalWriter(uuid.uuid4(), [], after_lost_run=False)
    chunk = os.urandom(1 << 20)
    for _ in range(48):
        writer.write(chunk)
    os.sync()  # all of it on disk: the next drop-behind lets go of every page
    for _ in range(DROP_BEHIND_BYTES >> 20):
        writer.write(chunk)
    writer.commit(final=True)
    writer.close()
    path = piece_path(writer.pieces[-1][0])
    cached = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(cached.stdout) <= 2 * DROP_BEHIND_BYTES  # of 56 MiB: what came after the sync
    assert path.read_bytes() == chunk * (48 + (DROP_BEHIND_BYTES >> 20))
    path.unlink()


@override_settings(COLLECT_BATCH_ROWS=50)  # PostgreSQL reads a page at least: ~180 rows here
def test_terminate_removes_the_file(api, start_import, django_capture_on_commit_callbacks):
    table = [["id", "submitted_at"]] + [[str(n), "2024-02-01T10:00:00Z"] for n in range(1000)]
    imported(start_import, table)
    task_id = export(api, **{"from": "2024-02-01", "to": "2024-02-01"})
    job = run_job(task_id, worker=WORKER, after_batch=pause_at_once)
    assert job.status == Status.PAUSED and 0 < job.rows_done < 1000
    [written] = export_dir().glob(f"{task_id}.*")
    with django_capture_on_commit_callbacks(execute=True):  # the files go once it commits
        job = services.job_terminate(job_id=task_id)
        assert written.exists()
    assert job.status == Status.TERMINATED
    assert not written.exists()
    response = api.get(f"/api/tasks/{task_id}/download/")
    assert (response.status_code, response.json()) == (
        409,
        {"detail": "the export is terminated, not completed", "status": "terminated"},
    )


def test_imports_not_completed_are_not_exported(api, user, start_import):
    done = imported(start_import, NASTY)
    job_factory(user, dataset=done.dataset)  # queued
    started = start_import(csv_bytes(NASTY), force=True)  # the same bytes again
    with override_settings(COLLECT_BATCH_ROWS=2):  # a batch is a block here: all 5 rows
        paused = run_job(started.pk, worker=WORKER, after_batch=pause_at_once)
    assert paused.status == Status.PAUSED  # with its rows written, but not complete
    assert len(segment_rows(paused)) == paused.rows_done == 5
    rows = exported(api, export(api, **{"from": "2000-01-01", "to": "2100-01-01", "raw": True}))
    assert rows == NASTY


def test_download_before_completion_is_409_and_another_users_is_404(api, start_import, other_user):
    imported(start_import, NASTY)
    task_id = export(api, **{"from": "2024-01-01", "to": "2024-01-02"})
    response = api.get(f"/api/tasks/{task_id}/download/")
    assert (response.status_code, response.json()) == (
        409,
        {"detail": "the export is queued, not completed", "status": "queued"},
    )
    run_job(task_id, worker=WORKER)
    response = client_for(other_user).get(f"/api/tasks/{task_id}/download/")
    assert (response.status_code, response.json()) == (404, {"detail": f"no task {task_id}"})
    assert exported(api, task_id, run=False)[0] == NASTY[0]


def test_the_briefs_export_call(api, start_import):
    imported(start_import, NASTY)
    response = api.get("/api/export/?from_date=2024-01-02&to_date=2024-01-02")
    assert response.status_code == 202
    assert response.json()["export_range"] == {"from": "2024-01-02", "to": "2024-01-02"}
    rows = exported(api, response.json()["task_id"])
    assert [row[0] for row in rows] == ["id", "4", "5"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "from_date=2024-01-01",
            "to_date is required: the range's first and last day, "
            "e.g. from_date=2026-01-01 and to_date=2026-01-31",
        ),
        ("", "from_date and to_date are required: the range's first and last day, e.g. "),
        (
            "from_date=2024-13-01&to_date=2024-01-02",
            "from_date '2024-13-01' is not a date (YYYY-MM-DD) or an ISO 8601 date-time",
        ),
        ("from_date=yesterday&to_date=2024-01-02", "from_date 'yesterday' is not a date"),
        (
            "from_date=2024-02-01&to_date=2024-01-01",
            "the range starts after it ends: from_date 2024-02-01 is later than to_date 2024-01-01",
        ),
    ],
)
def test_a_bad_range_is_400_naming_the_parameter_sent(api, start_import, query, message):
    imported(start_import, NASTY)
    response = api.get(f"/api/export/?{query}")
    assert response.status_code == 400
    assert response.json()["detail"].startswith(message)


def test_a_bad_range_of_a_json_export_names_from_and_to(api, start_import):
    imported(start_import, NASTY)
    response = api.post("/api/exports/", {"from": "2024-01-01", "to": "soon"}, format="json")
    assert (response.status_code, response.json()["detail"]) == (
        400,
        "to 'soon' is not a date (YYYY-MM-DD) or an ISO 8601 date-time",
    )
    response = api.post("/api/exports/", {"from": "2024-01-01"}, format="json")
    assert (response.status_code, response.json()["detail"]) == (
        400,
        "to: This field is required.",
    )


def test_exporting_an_unknown_dataset_or_column_is_refused(api, start_import):
    imported(start_import, NASTY)
    body = {"from": "2024-01-01", "to": "2024-01-02"}
    response = api.post("/api/exports/", {**body, "dataset": "nope"}, format="json")
    assert (response.status_code, response.json()) == (
        404,
        {"detail": "you have no dataset 'nope'"},
    )
    response = api.post("/api/exports/", {**body, "columns": ["id", "zzz"]}, format="json")
    assert (response.status_code, response.json()) == (
        400,
        {
            "detail": "columns: dataset 'responses' has no column \"zzz\"; its columns are "
            '"id", "submitted_at", "text" and "note"',
            "columns": NASTY[0],
        },
    )
    assert Job.objects.filter(kind="export").count() == 0


def test_an_expired_export_file_is_deleted_and_its_download_is_410(api, start_import):
    imported(start_import, NASTY)
    task_id = export(api, **{"from": "2024-01-01", "to": "2024-01-02"})
    exported(api, task_id)
    sweep()
    files = list(export_dir().glob(f"{task_id}.*"))
    assert files  # still fresh
    two_days_ago = time.time() - 2 * 24 * 3600
    for path in files:
        os.utime(path, (two_days_ago, two_days_ago))
    sweep()
    assert not any(path.exists() for path in files)
    response = api.get(f"/api/tasks/{task_id}/download/")
    assert response.status_code == 410
    assert response.json()["detail"].startswith("the export's file has expired")
