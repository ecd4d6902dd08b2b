"""tus uploads with upload storage in a bucket of a real SeaweedFS (tests/seaweedfs.py): each
chunk an object of its own, stored before the offset moves; any web process takes the next
chunk (each "process" here has a data directory of its own); one writer at a time through
the database; termination, expiry and the import's end leave nothing in the bucket."""

import hashlib
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from collect.errors import Conflict
from collect.jobs.models import Job
from collect.jobs.runner import run_job
from collect.jobs.states import Status
from collect.uploads import services
from collect.uploads.models import Upload
from collect.uploads.services import upload_sweep
from tests.conftest import TUS, TUS_CHUNK, csv_bytes, segment_rows, upload_file
from tests.conftest import tus_metadata as metadata
from tests.factories import dataset_factory

pytestmark = pytest.mark.django_db
WORKER = "test-worker"


def responses(count: int, *, width: int = 1) -> list[list[str]]:
    rows = [["id", "submitted_at", "answer"]]
    rows += [
        [str(n), f"2025-04-{n % 28 + 1:02d}T08:00:00Z", f'a, "b"\n{n}' * width]
        for n in range(count)
    ]
    return rows


TABLE = responses(3000)
DATA = csv_bytes(TABLE)


@pytest.fixture
def web_processes(tmp_path):
    """Two web processes' settings, each with a data directory of its own: nothing on disk
    is shared between them."""
    processes = []
    for number in range(2):
        data_dir = tmp_path / f"web-{number}"
        (data_dir / "uploads").mkdir(parents=True)
        (data_dir / "tmp").mkdir()
        processes.append(
            override_settings(
                DATA_DIR=data_dir,
                UPLOAD_DIR=data_dir / "uploads",
                FILE_UPLOAD_TEMP_DIR=data_dir / "tmp",
            )
        )
    return processes


def files_in(tmp_path) -> list[str]:
    return [str(path) for path in tmp_path.glob("web-*/**/*") if path.is_file()]


def create(api, length: int | None = len(DATA), **headers) -> str:
    if length is not None:
        headers.setdefault("HTTP_UPLOAD_LENGTH", str(length))
    response = api.post("/api/uploads/", **TUS, **headers)
    assert response.status_code == 201, response.content
    return response["Location"].removeprefix("http://testserver")


def patch(api, path: str, body: bytes, offset: int, **headers):
    headers = {"HTTP_UPLOAD_OFFSET": str(offset), **TUS, **headers}
    return api.generic("PATCH", path, body, content_type=TUS_CHUNK, **headers)


def upload_of(path: str) -> Upload:
    return Upload.objects.get(pk=path.rstrip("/").rsplit("/", 1)[1])


def chunk_keys(seaweedfs, bucket: str, upload: Upload) -> list[str]:
    return [key for key in seaweedfs.keys(bucket) if key.startswith(f"uploads/tus/{upload.pk}/")]


def cuts(data: bytes, count: int) -> list[tuple[int, bytes]]:
    size = -(-len(data) // count)
    return [(offset, data[offset : offset + size]) for offset in range(0, len(data), size)]


def imported(job_id, capture) -> Job:
    with capture(execute=True):  # the import's file is deleted once it has committed
        return run_job(job_id, worker=WORKER)


def test_chunks_sent_to_two_web_processes_in_turn_import_exactly(
    api, bucket, seaweedfs, web_processes, tmp_path, django_capture_on_commit_callbacks
):
    with web_processes[0]:
        path = create(api, HTTP_UPLOAD_METADATA=metadata(dataset="turns"))
    upload = upload_of(path)
    pieces = cuts(DATA, 5)
    for number, (offset, chunk) in enumerate(pieces):
        with web_processes[number % 2]:
            reply = patch(api, path, chunk, offset)
        assert reply.status_code == 204, reply.content
        assert reply["Upload-Offset"] == str(offset + len(chunk))
        assert files_in(tmp_path) == []  # neither process keeps anything of it
        assert len(chunk_keys(seaweedfs, bucket, upload)) == number + 1
    # Each chunk its own object, named by its offset, stored before the offset moved.
    keys = chunk_keys(seaweedfs, bucket, upload)
    assert [key.rsplit("/", 1)[1].split(".")[0] for key in keys] == [
        f"{offset:020d}" for offset, _ in pieces
    ]
    assert Upload.objects.get(pk=upload.pk).header_checked  # from the bucket's first bytes

    job = Job.objects.get(pk=reply["Collect-Task-Id"])
    assert job.params["path"] == f"{job.pk}.chunks"  # a list of the chunks, not a copy
    assert sorted(seaweedfs.keys(bucket)) == sorted([*keys, f"uploads/{job.pk}.chunks"])
    assert job.params["sha256"] == hashlib.sha256(DATA).hexdigest()  # read from the bucket
    assert job.bytes_total == len(DATA)
    done = imported(job.pk, django_capture_on_commit_callbacks)
    assert (done.status, done.rows_done) == (Status.COMPLETED, len(TABLE) - 1)
    assert [list(row[2:]) for row in segment_rows(done)] == TABLE[1:]
    assert seaweedfs.keys(bucket) == []


def test_a_chunk_larger_than_a_multipart_part_is_stored_whole(
    api, bucket, seaweedfs, django_capture_on_commit_callbacks
):
    table = responses(1200, width=800)  # about 10 MiB in one chunk: a multipart upload
    data = csv_bytes(table)
    assert len(data) > 9 << 20
    path = create(api, length=len(data))
    reply = patch(api, path, data, 0)
    assert reply.status_code == 204, reply.content
    (key,) = chunk_keys(seaweedfs, bucket, upload_of(path))
    stored = seaweedfs.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    assert stored == data
    done = imported(reply["Collect-Task-Id"], django_capture_on_commit_callbacks)
    assert (done.status, done.rows_done) == (Status.COMPLETED, len(table) - 1)
    assert seaweedfs.keys(bucket) == []


def test_a_patch_at_a_stale_offset_is_409_and_stores_nothing(api, bucket, seaweedfs):
    path = create(api)
    assert patch(api, path, DATA[:100], 0).status_code == 204
    before = seaweedfs.keys(bucket)
    for stale in (0, 50, 101):
        reply = patch(api, path, DATA[stale : stale + 100], stale)
        assert reply.status_code == 409
        assert reply.json()["offset"] == 100
    assert seaweedfs.keys(bucket) == before
    assert upload_of(path).offset == 100


class HeldBody:
    """A request body that hands out its bytes only once `go` is set; `reading` is set
    when its request starts reading it (it holds the upload's claim by then)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.reading, self.go = data, threading.Event(), threading.Event()

    def read(self, size: int) -> bytes:
        self.reading.set()
        assert self.go.wait(30)
        data, self.data = self.data[:size], self.data[size:]
        return data


def append_in_a_thread(user, path: str, body: HeldBody, offset: int) -> dict:
    """upload_append in a thread of its own (another web process, as far as the database
    is concerned); the returned dict gets its "upload" or its "error"."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["upload"] = services.upload_append(
                owner=user, upload_id=str(upload_of(path).pk), offset=offset, body=body
            )
        except Exception as error:
            outcome["error"] = error
        finally:
            connection.close()

    outcome["thread"] = thread = threading.Thread(target=run)
    thread.start()
    assert body.reading.wait(30), outcome
    return outcome


@pytest.mark.django_db(transaction=True)
def test_of_two_concurrent_patches_one_writes_and_the_other_is_423(api, user, bucket, seaweedfs):
    path = create(api)
    first = HeldBody(DATA[:1000])
    outcome = append_in_a_thread(user, path, first, 0)

    reply = patch(api, path, DATA[:500], 0)  # while the first is still arriving
    assert reply.status_code == 423
    assert chunk_keys(seaweedfs, bucket, upload_of(path)) == []

    first.go.set()
    outcome["thread"].join(30)
    assert outcome["upload"].offset == 1000
    assert len(chunk_keys(seaweedfs, bucket, upload_of(path))) == 1
    reply = patch(api, path, DATA[1000:], 1000)  # the claim was given up with the answer
    assert reply.status_code == 204, reply.content


@pytest.mark.django_db(transaction=True)
def test_a_patch_whose_claim_ran_out_loses_and_its_chunk_never_counts(api, user, bucket, seaweedfs):
    path = create(api)
    frozen = HeldBody(b"x" * 700)  # bytes that must never become part of the file
    outcome = append_in_a_thread(user, path, frozen, 0)
    # Its process froze past its claim's time: another request may take the upload over.
    Upload.objects.filter(pk=upload_of(path).pk).update(
        writer_until=timezone.now() - timedelta(seconds=1)
    )
    assert patch(api, path, DATA[:1000], 0).status_code == 204

    frozen.go.set()  # it wakes up, stores its chunk, and finds it has lost
    outcome["thread"].join(30)
    assert isinstance(outcome["error"], Conflict), outcome
    assert outcome["error"].details["offset"] == 1000
    upload = upload_of(path)
    assert upload.offset == 1000 and [chunk.size for chunk in upload.chunks.all()] == [1000]
    assert len(chunk_keys(seaweedfs, bucket, upload)) == 1  # its object was deleted

    reply = patch(api, path, DATA[1000:], 1000)
    assert reply.status_code == 204, reply.content
    job = run_job(reply["Collect-Task-Id"], worker=WORKER)
    assert (job.status, job.rows_done) == (Status.COMPLETED, len(TABLE) - 1)
    assert [list(row[2:]) for row in segment_rows(job)] == TABLE[1:]


class SlowBody(HeldBody):
    """A request body that trickles in: 100 bytes a read, a tenth of a second apart."""

    def read(self, size: int) -> bytes:
        self.reading.set()
        time.sleep(0.1)
        data, self.data = self.data[:100], self.data[100:]
        return data


@pytest.mark.django_db(transaction=True)
def test_a_slow_chunk_keeps_its_claim_past_the_time_it_was_first_given(api, user, bucket):
    with override_settings(COLLECT_LEASE_SECONDS=0.6):
        path = create(api)
        outcome = append_in_a_thread(user, path, SlowBody(DATA[:1500]), 0)
        time.sleep(1.0)  # its claim was renewed as its bytes arrived
        assert patch(api, path, DATA[:10], 0).status_code == 423
        outcome["thread"].join(30)
    assert outcome["upload"].offset == 1500, outcome


def test_termination_leaves_nothing_of_the_upload_in_the_bucket(api, bucket, seaweedfs):
    path = create(api)
    for offset, chunk in cuts(DATA, 4)[:3]:
        assert patch(api, path, chunk, offset).status_code == 204
    upload = upload_of(path)
    # An object that a request which lost its chunk left there goes too.
    seaweedfs.client().put_object(Bucket=bucket, Key=f"uploads/tus/{upload.pk}/lost", Body=b"x")
    assert len(seaweedfs.keys(bucket)) == 4

    assert api.delete(path, **TUS).status_code == 204
    assert seaweedfs.keys(bucket) == []
    assert patch(api, path, b"more", upload.offset).status_code == 410


def test_expiry_leaves_nothing_of_the_upload_in_the_bucket(api, bucket, seaweedfs):
    unfinished = create(api)
    assert patch(api, unfinished, DATA[:1000], 0).status_code == 204
    partial = create(api, HTTP_UPLOAD_CONCAT="partial")
    assert patch(api, partial, DATA, 0).status_code == 204  # complete, never joined
    assert len(seaweedfs.keys(bucket)) == 2

    assert upload_sweep() == 0
    assert upload_sweep(now=timezone.now() + timedelta(days=2)) == 2
    assert seaweedfs.keys(bucket) == []


def test_an_upload_whose_import_started_keeps_its_chunks_when_swept(
    api, bucket, seaweedfs, django_capture_on_commit_callbacks
):
    """Its process died after the job was made and before the upload's row said so."""
    path = create(api)
    reply = patch(api, path, DATA, 0)
    Upload.objects.filter(pk=upload_of(path).pk).update(state=Upload.State.RECEIVING, job=None)

    assert upload_sweep(now=timezone.now() + timedelta(days=2)) == 1
    done = imported(reply["Collect-Task-Id"], django_capture_on_commit_callbacks)
    assert (done.status, done.rows_done) == (Status.COMPLETED, len(TABLE) - 1)
    assert seaweedfs.keys(bucket) == []


def test_concatenated_partials_import_exactly_without_a_copy(
    api, bucket, seaweedfs, web_processes, tmp_path, django_capture_on_commit_callbacks
):
    cut = DATA.index(b"\r\n", len(DATA) // 3) + 2
    with web_processes[0]:
        first = create(api, length=cut, HTTP_UPLOAD_CONCAT="partial")
        second = create(api, length=len(DATA) - cut, HTTP_UPLOAD_CONCAT="partial")
    half = (len(DATA) - cut) // 2
    with web_processes[1]:
        assert patch(api, second, DATA[cut : cut + half], 0).status_code == 204
    with web_processes[0]:
        assert patch(api, second, DATA[cut + half :], half).status_code == 204
        assert patch(api, first, DATA[:cut], 0).status_code == 204
    chunks = seaweedfs.keys(bucket)
    assert len(chunks) == 3

    with web_processes[1]:
        reply = api.post(
            "/api/uploads/",
            HTTP_UPLOAD_CONCAT=f"final;{first} {second}",
            HTTP_UPLOAD_METADATA=metadata(dataset="joined"),
            **TUS,
        )
    assert reply.status_code == 201, reply.content
    assert files_in(tmp_path) == []
    job = Job.objects.get(pk=reply["Collect-Task-Id"])
    assert sorted(seaweedfs.keys(bucket)) == sorted([*chunks, f"uploads/{job.pk}.chunks"])
    assert job.params["sha256"] == hashlib.sha256(DATA).hexdigest()
    done = imported(job.pk, django_capture_on_commit_callbacks)
    assert (done.status, done.rows_done) == (Status.COMPLETED, len(TABLE) - 1)
    assert [list(row[2:]) for row in segment_rows(done)] == TABLE[1:]
    assert seaweedfs.keys(bucket) == []  # the parts' chunks went with the import's file


def test_a_header_the_import_would_refuse_is_refused_from_the_bucket(api, user, bucket, seaweedfs):
    dataset_factory(user, "f", ["id", "submitted_at"])
    path = create(api, length=10**9, HTTP_UPLOAD_METADATA=metadata(dataset="f"))
    reply = patch(api, path, DATA[:2000], 0)
    assert reply.status_code == 400
    assert "columns" in reply.json()["detail"]
    assert upload_of(path).state == Upload.State.FAILED
    assert seaweedfs.keys(bucket) == []  # nothing more is kept of it


def test_the_same_bytes_again_are_409_at_the_last_chunk_and_leave_nothing(api, bucket, seaweedfs):
    first = upload_file(api, DATA).json()["task_id"]
    path = create(api)
    assert patch(api, path, DATA[:1000], 0).status_code == 204
    reply = patch(api, path, DATA[1000:], 1000)
    assert reply.status_code == 409
    assert reply.json()["task_id"] == first
    assert seaweedfs.keys(bucket) == [f"uploads/{first}.csv"]  # the first import's only
