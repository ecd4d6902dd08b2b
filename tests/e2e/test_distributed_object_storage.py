"""The distributed stack with its files in a bucket of a real SeaweedFS (tests/seaweedfs.py)
and a data directory of its own for every process: nothing shared but the database, the
broker and the bucket. An upload through either path imports from the bucket; a worker
killed mid-import is taken over by a worker with another data directory, every row once;
a tus upload's chunks may reach two web processes in turn; the bucket is empty of the
uploads afterwards. An export is written to the bucket in parts, paused, resumed, its worker
killed and taken over, downloaded exactly, and deleted by expiry."""

import base64
import uuid

import pytest

from tests.e2e.conftest import (
    LEASE_SECONDS,
    Client,
    another_web,
    assert_imported_exactly_once,
    assert_same_rows,
    wait_until,
)

pytestmark = pytest.mark.e2e
WORKERS_OWN_DIRS = 2
EXPORT_TTL_S = 45  # long enough to download the export, short enough to see it expire


@pytest.fixture
def bucket_stack(seaweedfs, start_server, tmp_path):
    """A stack whose files live in a fresh bucket, each worker on a data directory of its
    own; yields (stack, bucket, the workers' data directories)."""
    bucket = seaweedfs.create_bucket(f"collect-e2e-{uuid.uuid4().hex[:10]}")
    stack = start_server(**seaweedfs.env(bucket), COLLECT_EXPORT_TTL=str(EXPORT_TTL_S))
    stack.kill_workers()
    server_env, directories = stack.env, []
    for number in range(WORKERS_OWN_DIRS):
        directory = tmp_path / f"worker-{number}-data"
        directory.mkdir()
        directories.append(directory)
        stack.env = {**server_env, "COLLECT_DATA_DIR": str(directory)}
        stack.add_worker()
    stack.env = server_env
    yield stack, bucket, directories


def uploads_on_disk(*directories) -> list[str]:
    return files_on_disk("uploads", *directories)


def files_on_disk(kind: str, *directories) -> list[str]:
    return [path.name for directory in directories for path in directory.glob(f"{kind}/*")]


TUS = {"Tus-Resumable": "1.0.0"}


def tus_create(client: Client, length: int, dataset: str) -> str:
    """A new tus upload's path."""
    metadata = f"dataset {base64.b64encode(dataset.encode()).decode()}"
    headers = {**TUS, "Upload-Length": str(length), "Upload-Metadata": metadata}
    created = client.request("POST", "/api/uploads/", headers=headers)
    assert created.status == 201, created.body
    location = created.headers["Location"]
    return location[location.index("/api/uploads/") :]


def tus_patch(client: Client, path: str, offset: int, chunk: bytes):
    headers = {
        **TUS,
        "Upload-Offset": str(offset),
        "Content-Type": "application/offset+octet-stream",
    }
    return client.request("PATCH", path, body=chunk, headers=headers)


def test_a_killed_workers_import_from_the_bucket_is_taken_over_on_another_data_dir(
    bucket_stack, seaweedfs, big_csv
):
    stack, bucket, worker_dirs = bucket_stack
    client = stack.client("uma")
    task_id = client.start_import(big_csv.path)["task_id"]
    assert seaweedfs.keys(bucket) == [f"uploads/{task_id}.csv"]
    assert uploads_on_disk(stack.data_dir, *worker_dirs) == []  # in the bucket only

    client.wait_until_writing(task_id)
    doomed = wait_until(lambda: stack.worker_running(task_id), timeout=10, what="its worker")
    stack.kill_workers(doomed)
    assert 0 < stack.segment_stats(task_id).rows < big_csv.rows, "not killed mid-import"

    job = client.wait_for_status(task_id, "completed", timeout=LEASE_SECONDS + 120)
    assert_imported_exactly_once(stack, job, big_csv.rows)
    wait_until(lambda: seaweedfs.keys(bucket) == [], timeout=10, what="the bucket emptied")


def test_a_tus_upload_imports_from_the_bucket(bucket_stack, seaweedfs):
    stack, bucket, worker_dirs = bucket_stack
    client = stack.client("vera")
    rows = 2000
    content = ("id,submitted_at\r\n" + "".join(
        f"{n},2025-05-{n % 28 + 1:02d}T00:00:00Z\r\n" for n in range(rows)
    )).encode()  # fmt: skip
    tus = {"Tus-Resumable": "1.0.0"}
    created = client.request(
        "POST",
        "/api/uploads/",
        headers={
            **tus,
            "Upload-Length": str(len(content)),
            "Upload-Metadata": f"dataset {base64.b64encode(b'tus-bucket').decode()}",
        },
    )
    assert created.status == 201, created.body
    location = created.headers["Location"]
    path = location[location.index("/api/uploads/") :]
    half = len(content) // 2
    for offset, chunk in ((0, content[:half]), (half, content[half:])):
        reply = client.request(
            "PATCH",
            path,
            body=chunk,
            headers={
                **tus,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            },
        )
        assert reply.status == 204, reply.body
    task_id = reply.headers["Collect-Task-Id"]
    job = client.wait_for_status(task_id, "completed", timeout=60)
    assert_imported_exactly_once(stack, job, rows)
    wait_until(lambda: seaweedfs.keys(bucket) == [], timeout=10, what="the bucket emptied")
    assert uploads_on_disk(*worker_dirs) == []
    assert uploads_on_disk(stack.data_dir) == []  # the received file went to the bucket


def test_an_export_to_the_bucket_paused_resumed_taken_over_downloaded_and_expired(
    bucket_stack, seaweedfs, big_csv
):
    stack, bucket, worker_dirs = bucket_stack
    client = stack.client("wade")
    imported = client.start_import(big_csv.path)["task_id"]
    client.wait_for_status(imported, "completed", timeout=300)

    body = b'{"dataset": "responses", "from": "2000-01-01", "to": "2100-01-01", "raw": true}'
    reply = client.request(
        "POST", "/api/exports/", body=body, headers={"Content-Type": "application/json"}
    )
    assert reply.status == 202, reply.body
    task_id = reply.json()["task_id"]
    client.wait_until_writing(task_id, timeout=120)  # a first part is in the bucket
    assert client.control(task_id, "pause").status == 200
    paused = client.wait_for_status(task_id, "paused", timeout=30)
    assert paused["progress"]["rows_done"] < big_csv.rows, "the export ended before its pause"
    [upload] = [key for key in seaweedfs.keys(bucket) if "exports/" in key]
    assert upload.startswith(f"(multipart) exports/{task_id}.0.")  # parts, not yet an object

    assert client.control(task_id, "resume").status == 200
    client.wait_until_writing(task_id, beyond=paused["progress"]["rows_done"], timeout=120)
    doomed = wait_until(lambda: stack.worker_running(task_id), timeout=10, what="its worker")
    stack.kill_workers(doomed)

    job = client.wait_for_status(task_id, "completed", timeout=LEASE_SECONDS + 120)
    assert job["progress"]["rows_done"] == big_csv.rows
    download = client.get(f"/api/tasks/{task_id}/download/")
    assert download.status == 200
    assert_same_rows(download.text, big_csv.path)
    stored = seaweedfs.keys(bucket)
    # The killed run's piece, completed with its committed parts, and the taker's piece.
    assert len(stored) == 2 and all(k.startswith(f"exports/{task_id}.") for k in stored), stored
    assert files_on_disk("exports", stack.data_dir, *worker_dirs) == []

    wait_until(lambda: seaweedfs.keys(bucket) == [], timeout=EXPORT_TTL_S + 30, what="expiry")
    assert client.get(f"/api/tasks/{task_id}/download/").status == 410


def test_tus_chunks_sent_to_two_web_processes_in_turn_import_exactly(
    bucket_stack, seaweedfs, tmp_path
):
    """No disk is shared between the two `collect serve` processes: each chunk is in the
    bucket before its PATCH is answered, so the other process can take the next one."""
    stack, bucket, worker_dirs = bucket_stack
    rows = 30_000
    content = ("id,submitted_at,answer\r\n" + "".join(
        f'{n},2025-05-{n % 28 + 1:02d}T00:00:00Z,"a, ""b""\n{n}"\r\n' for n in range(rows)
    )).encode()  # fmt: skip
    with another_web(stack, tmp_path / "web-2-data") as other:
        webs = [stack.client("wanda"), Client(other.port, stack.tokens["wanda"])]
        path = tus_create(webs[1], len(content), "tus-two-webs")
        size = len(content) // 7 + 1
        for number, offset in enumerate(range(0, len(content), size)):
            reply = tus_patch(webs[number % 2], path, offset, content[offset : offset + size])
            assert reply.status == 204, reply.body
            assert reply.headers["Upload-Offset"] == str(min(offset + size, len(content)))
            # A stale offset (the other process has not moved on: nothing is kept there).
            stale = tus_patch(webs[(number + 1) % 2], path, offset, b"stale bytes")
            assert stale.status == 409, stale.body
        task_id = reply.headers["Collect-Task-Id"]
        assert uploads_on_disk(stack.data_dir, other.data_dir) == []
        job = webs[0].wait_for_status(task_id, "completed", timeout=120)
        assert_imported_exactly_once(stack, job, rows)
        assert stack.segment_ids(task_id) == sorted(str(n) for n in range(rows))

        # Terminated halfway through: nothing of it stays in the bucket.
        path = tus_create(webs[0], len(content), "tus-two-webs")
        assert tus_patch(webs[1], path, 0, content[:size]).status == 204
        assert any(key.startswith("uploads/tus/") for key in seaweedfs.keys(bucket))
        assert webs[0].request("DELETE", path, headers=TUS).status == 204
    wait_until(lambda: seaweedfs.keys(bucket) == [], timeout=10, what="the bucket emptied")
    assert uploads_on_disk(stack.data_dir, other.data_dir, *worker_dirs) == []
