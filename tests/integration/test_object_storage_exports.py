"""Export files in a bucket of a real SeaweedFS (tests/seaweedfs.py): written as multipart
uploads of PART_BYTES parts, downloaded through the API exactly as they were exported,
every row once across a pause and a lost run, deleted by terminate and by expiry."""

import csv
import io
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from collect.exports.storage import PART_BYTES, export_bucket, export_dir
from collect.jobs import services
from collect.jobs.models import Job
from collect.jobs.runner import run_job
from collect.jobs.states import Status
from collect.jobs.sweeper import sweep
from tests.conftest import csv_bytes

# Batches of 2000 rows, about 1 MB: a part every 9 batches.
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("batches_of_2000_rows"),
]
WORKER = "test-worker"
ROW_BYTES = 500


@pytest.fixture
def batches_of_2000_rows():
    with override_settings(COLLECT_BATCH_ROWS=2000, COLLECT_BATCH_SECONDS=30):
        yield


def responses(count: int) -> list[list[str]]:
    """Rows of about ROW_BYTES each, with what CSV must quote, all on 2025-04-01."""
    filler = "ü" * (ROW_BYTES // 2 - 40)
    return [["id", "submitted_at", "answer"]] + [
        [str(n), f"2025-04-01T{n % 24:02d}:00:00Z", f'a, "b"\n{n} {filler}'] for n in range(count)
    ]


@pytest.fixture
def exported_table(bucket, start_import, api, django_capture_on_commit_callbacks):
    """A table of 2.5 parts' worth of rows, imported; the export of all of it, started."""
    table = responses(int(2.5 * PART_BYTES / ROW_BYTES))
    with django_capture_on_commit_callbacks(execute=True):
        job = run_job(start_import(csv_bytes(table)).pk, worker=WORKER)
    assert job.status == Status.COMPLETED
    body = {"from": "2025-04-01", "to": "2025-04-01", "raw": True}
    reply = api.post("/api/exports/", body, format="json")
    assert reply.status_code == 202, reply.content
    return table, reply.json()["task_id"]


def downloaded(api, task_id: str) -> list[list[str]]:
    reply = api.get(f"/api/tasks/{task_id}/download/")
    assert reply.status_code == 200, reply.content
    content = b"".join(reply.streaming_content).decode("utf-8")
    return list(csv.reader(io.StringIO(content, newline="")))


def exports_in(seaweedfs, bucket: str) -> list[str]:
    return [key for key in seaweedfs.keys(bucket) if "exports/" in key]


def test_an_export_goes_to_the_bucket_in_parts_and_downloads_exactly(
    api, seaweedfs, bucket, exported_table
):
    table, task_id = exported_table
    job = run_job(task_id, worker=WORKER)
    assert (job.status, job.rows_done) == (Status.COMPLETED, len(table) - 1)

    [(name, size, _, parts)] = job.checkpoint["pieces"]
    assert len(parts) == 3  # two of PART_BYTES or a batch more, and the rest
    assert exports_in(seaweedfs, bucket) == [f"exports/{name}"]  # complete: no open upload
    assert export_bucket().size(name) == size == job.bytes_done
    assert list(export_dir().glob(f"{task_id}*")) == []  # nothing on this machine's disk
    assert downloaded(api, task_id) == table


def test_pause_and_resume_write_every_row_once_and_show_only_what_is_in_parts(
    api, seaweedfs, bucket, exported_table
):
    table, task_id = exported_table
    seen = []

    def pause_after_twelve_batches(job):
        seen.append(job.rows_done)
        if len(seen) == 12:
            services.job_pause(job_id=job.pk)

    paused = run_job(task_id, worker=WORKER, after_batch=pause_after_twelve_batches)
    assert paused.status == Status.PAUSED
    [(name, size, upload_id, [part])] = paused.checkpoint["pieces"]
    # Progress moves a part at a time: what the job shows is what a download would hold.
    assert set(seen) == {0, paused.rows_done} and size == paused.bytes_done >= PART_BYTES
    assert exports_in(seaweedfs, bucket) == [f"(multipart) exports/{name}"]

    services.job_resume(job_id=task_id)
    done = run_job(task_id, worker=WORKER)
    assert done.status == Status.COMPLETED
    [(same_name, _, same_upload, parts)] = done.checkpoint["pieces"]
    assert (same_name, same_upload, parts[0]) == (name, upload_id, part)
    assert downloaded(api, task_id) == table


class WorkerFroze(BaseException):
    pass


def test_after_a_lost_run_the_export_goes_on_in_a_new_upload_a_stale_writer_cannot_touch(
    api, seaweedfs, bucket, exported_table
):
    table, task_id = exported_table
    batches = []

    def vanish_after_twelve_batches(job):  # as a worker that froze then
        batches.append(job.rows_done)
        if len(batches) == 12:
            raise WorkerFroze

    with pytest.raises(WorkerFroze):
        run_job(task_id, worker="frozen", after_batch=vanish_after_twelve_batches)
    Job.objects.filter(pk=task_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    sweep()  # takes the job back
    [(stale_name, _, stale_upload, _)] = Job.objects.get(pk=task_id).checkpoint["pieces"]

    job = run_job(task_id, worker=WORKER)
    assert job.status == Status.COMPLETED
    (stale, _, _, [_]), (fresh, _, _, _) = job.checkpoint["pieces"]
    assert stale == stale_name and fresh != stale_name
    # The frozen worker wakes and sends the part it had: that upload is closed.
    with pytest.raises(Exception, match="NoSuchUpload"):
        export_bucket().send_part(stale, stale_upload, 2, io.BytesIO(b"999999,lost\n"), 12)
    assert sorted(exports_in(seaweedfs, bucket)) == sorted([f"exports/{stale}", f"exports/{fresh}"])
    assert downloaded(api, task_id) == table


def test_terminate_and_expiry_leave_nothing_in_the_bucket(
    api, seaweedfs, bucket, exported_table, django_capture_on_commit_callbacks
):
    _, task_id = exported_table
    batches = []

    def pause_after_twelve_batches(job):
        batches.append(job)
        if len(batches) == 12:
            services.job_pause(job_id=job.pk)

    assert run_job(task_id, worker=WORKER, after_batch=pause_after_twelve_batches).status == (
        Status.PAUSED
    )
    assert exports_in(seaweedfs, bucket)  # an open upload of a part
    with django_capture_on_commit_callbacks(execute=True):
        assert services.job_terminate(job_id=task_id).status == Status.TERMINATED
    assert exports_in(seaweedfs, bucket) == []

    body = {"from": "2025-04-01", "to": "2025-04-01"}
    again = api.post("/api/exports/", body, format="json").json()
    assert run_job(again["task_id"], worker=WORKER).status == Status.COMPLETED
    abandoned = export_bucket().start(f"{task_id}.9.abandoned.csv")  # as a run lost for good
    sweep()
    assert len(exports_in(seaweedfs, bucket)) == 2  # fresh: kept
    with override_settings(COLLECT_EXPORT_TTL=-60):  # as if a day had gone by
        sweep()
    assert exports_in(seaweedfs, bucket) == []
    reply = api.get(f"/api/tasks/{again['task_id']}/download/")
    assert reply.status_code == 410
    assert abandoned not in [upload for upload, _ in export_bucket().uploads("")]
