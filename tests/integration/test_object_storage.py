"""Upload storage in a bucket of a real SeaweedFS (tests/seaweedfs.py): files stored there
by the upload paths, read back by ranges from wherever an import resumes, deleted when the
import no longer needs them; readiness asks the bucket."""

import hashlib
import os

import pytest
from django.conf import settings
from django.core.files.storage import storages
from django.test import override_settings
from rest_framework.test import APIClient

from collect.files import RANGE_BYTES, upload_delete, upload_open, upload_store
from collect.jobs import services
from collect.jobs.runner import run_job
from collect.jobs.states import Status
from tests.conftest import client_for, csv_bytes, segment_rows, upload_file

pytestmark = pytest.mark.django_db
WORKER = "test-worker"


def responses(count: int) -> list[list[str]]:
    rows = [["id", "submitted_at", "answer"]]
    rows += [[str(n), f"2025-04-{n % 28 + 1:02d}T08:00:00Z", f'a, "b"\n{n}'] for n in range(count)]
    return rows


@pytest.fixture
def gets():
    """The Range header of every GetObject that upload storage sends from now on."""
    asked: list[str] = []
    client = storages["uploads"].connection.meta.client
    client.meta.events.register(
        "before-call.s3.GetObject", lambda params, **_: asked.append(params["headers"]["Range"])
    )
    return asked


def test_a_file_stored_in_the_bucket_reads_back_by_ranges(bucket, seaweedfs, tmp_path, gets):
    content = os.urandom(3 * RANGE_BYTES + 12345)
    source = tmp_path / "upload.bin"
    source.write_bytes(content)

    assert upload_store(source, "some-job.csv") == "some-job.csv"
    assert not source.exists()  # moved, as on disk
    assert seaweedfs.keys(bucket) == ["uploads/some-job.csv"]
    assert not (settings.UPLOAD_DIR / "some-job.csv").exists()

    with upload_open("some-job.csv") as file:
        file.seek(RANGE_BYTES + 7)
        assert file.read(100) == content[RANGE_BYTES + 7 : RANGE_BYTES + 107]
        file.seek(0)
        whole = hashlib.sha256()
        while data := file.read(1 << 18):
            whole.update(data)
    assert whole.digest() == hashlib.sha256(content).digest()
    # Never the whole object at once: ranges of at most the buffer's size, from the seek.
    starts_ends = [tuple(map(int, r.removeprefix("bytes=").split("-"))) for r in gets]
    assert starts_ends[0] == (RANGE_BYTES + 7, 2 * RANGE_BYTES + 6)
    assert all(end - start + 1 <= RANGE_BYTES for start, end in starts_ends)

    upload_delete("some-job.csv")
    assert seaweedfs.keys(bucket) == []
    upload_delete("some-job.csv")  # gone already: no error
    with pytest.raises(FileNotFoundError):
        upload_open("some-job.csv")


def test_an_upload_imports_from_the_bucket_and_leaves_nothing_there(
    bucket, seaweedfs, user, django_capture_on_commit_callbacks
):
    table = responses(5000)
    reply = upload_file(client_for(user), csv_bytes(table))
    assert reply.status_code == 202, reply.content
    job_id = reply.json()["task_id"]
    assert seaweedfs.keys(bucket) == [f"uploads/{job_id}.csv"]
    assert list(settings.UPLOAD_DIR.glob(f"{job_id}*")) == []  # not on this machine's disk

    with django_capture_on_commit_callbacks(execute=True):
        job = run_job(job_id, worker=WORKER)
    assert job.status == Status.COMPLETED
    assert job.rows_done == 5000
    assert [list(row[2:]) for row in segment_rows(job)] == table[1:]
    assert seaweedfs.keys(bucket) == []  # the file went when the import completed


def test_a_resumed_import_reads_the_bucket_from_its_checkpoint(
    bucket, start_import, gets, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr("collect.files.RANGE_BYTES", 1 << 16)  # a file of many ranges
    table = responses(20_000)
    job = start_import(csv_bytes(table))

    def pause_after_the_first_batch(running):
        services.job_pause(job_id=running.pk)

    with override_settings(COLLECT_BATCH_ROWS=2000):
        paused = run_job(job.pk, worker=WORKER, after_batch=pause_after_the_first_batch)
    assert paused.status == Status.PAUSED and 0 < paused.rows_done < 20_000
    offset = paused.checkpoint["offset"]

    services.job_resume(job_id=job.pk)
    gets.clear()
    with django_capture_on_commit_callbacks(execute=True):
        done = run_job(job.pk, worker=WORKER)
    assert done.status == Status.COMPLETED and done.rows_done == 20_000
    assert [list(row[2:]) for row in segment_rows(done)] == table[1:]  # each row once
    # The first range is the look at the file's first bytes (is it gzip?); the reading of
    # records starts at the checkpoint, not at the file's start.
    assert gets[0].startswith("bytes=0-")
    assert gets[1].startswith(f"bytes={offset}-"), gets
    # and on by ranges (of the parser's reads or the buffer, the larger) to the file's end.
    size = len(csv_bytes(table))
    spans = [tuple(map(int, r.removeprefix("bytes=").split("-"))) for r in gets[1:]]
    assert all(start >= offset and end - start < 1 << 20 for start, end in spans), spans
    assert spans[-1][1] == size - 1


def test_readyz_asks_the_bucket(bucket, seaweedfs):
    assert APIClient().get("/readyz").json() == {"status": "ready"}
    seaweedfs.client().delete_bucket(Bucket=bucket)  # the bucket an operator named is gone
    reply = APIClient().get("/readyz")
    assert reply.status_code == 503
    assert reply.json()["down"] == ["storage"]
