"""Faults and contention on either stack: two jobs at once, disks that fill up and free up
again. The distributed stack's own faults (connections, database and broker restarts,
frozen workers) are in test_distributed_faults.py."""

import json
import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from tests.e2e.conftest import assert_same_rows, generate_csv, wait_until

pytestmark = pytest.mark.e2e
SIDE_BY_SIDE_ROWS = 200_000
SMALL_DISK_MB = 40
IMPORT_TIMEOUT_S = 180


def start_export(client, dataset: str = "responses") -> str:
    body = {"dataset": dataset, "from": "2000-01-01", "to": "2100-01-01", "raw": True}
    reply = client.request(
        "POST", "/api/exports/", json.dumps(body), {"Content-Type": "application/json"}
    )
    assert reply.status == 202, reply.body
    return reply.json()["task_id"]


def test_two_jobs_run_side_by_side(start_server, tmp_path):
    stack = start_server()
    client = stack.client("olga")
    source = generate_csv(tmp_path, SIDE_BY_SIDE_ROWS)
    imported = client.start_import(source.path)["task_id"]
    client.wait_for_status(imported, "completed", timeout=IMPORT_TIMEOUT_S)

    first, second = start_export(client), start_export(client)
    seen_together = wait_until(
        lambda: all(client.job(task)["status"] == "running" for task in (first, second)),
        timeout=60,
        what="both exports to be running at once",
        every=0.01,
    )
    assert seen_together
    for task_id in (first, second):
        job = client.wait_for_status(task_id, "completed", timeout=120)
        assert job["progress"]["rows_done"] == source.rows
        assert_same_rows(client.get(f"/api/tasks/{task_id}/download/").text, source.path)
    jobs = [client.job(task) for task in (first, second)]
    started, finished = (
        datetime.fromisoformat(jobs[1]["started_at"]),
        datetime.fromisoformat(jobs[0]["finished_at"]),
    )
    assert started < finished, "the second export waited for the first"


def mount_small_disk(path: Path, megabytes: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    command = ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0700", "tmpfs", str(path)]
    if os.geteuid() != 0:
        command = ["sudo", "-n", *command]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, f"a small disk needs mount (root or sudo): {result.stderr}"


def unmount(path: Path) -> None:
    command = ["umount", "-l", str(path)]
    subprocess.run(command if os.geteuid() == 0 else ["sudo", "-n", *command], check=False)


@pytest.fixture
def data_dir_with_small_disks(tmp_path):
    """A data directory whose upload buffer (`tmp`) and `exports` are small disks of their
    own; the database and the stored uploads stay on the big one."""
    data_dir = tmp_path / "small-disks"
    small = [data_dir / "tmp", data_dir / "exports"]
    for path in small:
        mount_small_disk(path, SMALL_DISK_MB)
    yield data_dir
    for path in small:
        unmount(path)


def fill(disk: Path, leave_bytes: int) -> Path:
    """A file that takes all of the disk's free room but `leave_bytes`."""
    filler = disk / "filler"
    room = shutil.disk_usage(disk).free - leave_bytes
    with filler.open("wb") as out:
        out.truncate(0)
        block = b"\0" * (1 << 20)
        while room > 0:
            out.write(block[: min(room, len(block))])
            room -= len(block)
    return filler


def test_an_upload_onto_a_full_disk_is_507_and_leaves_nothing(
    data_dir_with_small_disks, start_server, tmp_path
):
    stack = start_server(data_dir=data_dir_with_small_disks)
    client = stack.client("pia")
    buffer_disk = data_dir_with_small_disks / "tmp"
    source = generate_csv(tmp_path, 50_000)  # ~13 MB
    filler = fill(buffer_disk, leave_bytes=1 << 20)

    reply = client.upload(source.path)
    assert reply.status == 507, reply.body[:300]
    assert reply.headers["Content-Type"] == "application/json"
    assert "disk is full" in reply.json()["detail"] and int(reply.headers["Retry-After"]) > 0
    assert sorted(path.name for path in buffer_disk.iterdir()) == ["filler"]

    filler.unlink()  # the disk frees up: the same upload now works
    task_id = client.start_import(source.path)["task_id"]
    job = client.wait_for_status(task_id, "completed", timeout=IMPORT_TIMEOUT_S)
    assert job["progress"]["rows_done"] == source.rows


def test_an_export_onto_a_full_disk_waits_for_room_and_loses_nothing(
    data_dir_with_small_disks, start_server, tmp_path
):
    stack = start_server(
        data_dir=data_dir_with_small_disks, COLLECT_MAX_CRASHES="2", COLLECT_RETRY_MAX_SECONDS="1"
    )
    client = stack.client("quinn")
    source = generate_csv(tmp_path, 80_000)  # ~21 MB: more than is left, less than the disk
    imported = client.start_import(source.path)["task_id"]
    client.wait_for_status(imported, "completed", timeout=IMPORT_TIMEOUT_S)
    filler = fill(data_dir_with_small_disks / "exports", leave_bytes=4 << 20)

    task_id = start_export(client)

    def retried_past_the_crash_limit():
        job = client.job(task_id)
        assert job["status"] in ("queued", "running"), job
        retry = job["retry"]
        return retry and "No space left" in retry["last_error"] and retry["attempts"] > 3

    wait_until(retried_past_the_crash_limit, timeout=60, what="the export to be retried")
    filler.unlink()
    job = client.wait_for_status(task_id, "completed", timeout=120)
    assert job["progress"]["rows_done"] == source.rows
    assert_same_rows(client.get(f"/api/tasks/{task_id}/download/").text, source.path)
    # What the lost runs wrote and never committed is gone: the disk holds the export alone.
    kept = sum(path.stat().st_size for path in (data_dir_with_small_disks / "exports").iterdir())
    assert kept == job["progress"]["bytes_done"]
