"""End-to-end tests of resumable uploads (tus 1.0.0 at /api/uploads/) against a running
Collect, on the embedded and on the distributed stack: real tus clients (tuspy, and
tus-js-client under Node) and raw HTTP, each upload followed to the end of its import.

An upload that completes starts its import; the import must then hold each of the file's
records exactly once, however the upload was broken off, resumed or pieced together.
"""

import base64
import csv
import gzip
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tusclient.client import TusClient
from tusclient.uploader import Uploader

from tests.e2e.conftest import (
    Client,
    CollectServer,
    GeneratedCsv,
    Reply,
    assert_imported_exactly_once,
    generate_csv,
)

pytestmark = pytest.mark.e2e

TUS_ROWS = 30_000  # about 7 MB: 27 chunks
CHUNK = 256 * 1024
TUS = {"Tus-Resumable": "1.0.0"}
CHUNK_TYPE = "application/offset+octet-stream"
SMALL_LIMIT = 5_000_000  # COLLECT_MAX_UPLOAD_BYTES of the server the gzip bomb is sent to
TUSJS_DIR = Path(__file__).parent / "tusjs"
NODE_TIMEOUT_S = 60
NPM_TIMEOUT_S = 300


@pytest.fixture(scope="session")
def tus_csv(tmp_path_factory) -> Iterator[GeneratedCsv]:
    """Generated form responses, small enough to import in a moment, big enough for many
    chunks."""
    generated = generate_csv(tmp_path_factory.mktemp("tus-files"), TUS_ROWS)
    yield generated
    generated.path.unlink()


# Helpers.


def tus_client(server: CollectServer, user: Client) -> TusClient:
    return TusClient(
        f"http://127.0.0.1:{server.port}/api/uploads/",
        headers={"Authorization": f"Token {user.token}"},
    )


def path_of(url: str) -> str:
    return urlsplit(url).path


def upload_id_of(url: str) -> str:
    return path_of(url).rstrip("/").rsplit("/", 1)[1]


def head(user: Client, url: str) -> Reply:
    reply = user.request("HEAD", path_of(url), headers=TUS)
    assert reply.status == 200, (reply.status, reply.headers)
    return reply


def server_offset(user: Client, url: str) -> int:
    return int(head(user, url).headers["Upload-Offset"])


def metadata(**values: str) -> str:
    """An Upload-Metadata header: `key base64(value)` pairs."""
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items()
    )


def job_of_upload(user: Client, upload_id: str) -> dict:
    """The one job of `user` that imports the upload, found by listing the jobs."""
    jobs, page = [], "/api/tasks/"
    while page:
        listing = user.get(page)
        assert listing.status == 200, listing.body[:500]
        jobs += listing.json()["results"]
        following = listing.json()["next"]
        page = following and f"{path_of(following)}?{urlsplit(following).query}"
    matching = [job for job in jobs if job["upload_id"] == upload_id]
    assert len(matching) == 1, (upload_id, matching)
    return matching[0]


def file_ids(path: Path) -> list[str]:
    """The first column of a CSV file's records, in file order."""
    with path.open(newline="", encoding="utf-8") as file:
        return [row[0] for row in list(csv.reader(file))[1:]]


def upload_whole(server: CollectServer, user: Client, path: Path, dataset: str) -> Uploader:
    """Upload a file with tuspy in CHUNK-sized chunks; returns the finished uploader."""
    with path.open("rb") as file:
        uploader = tus_client(server, user).uploader(
            file_stream=file, chunk_size=CHUNK, metadata={"filename": path.name, "dataset": dataset}
        )
        uploader.upload()
    assert uploader.offset == path.stat().st_size
    return uploader


def send_cut_off_patch(port: int, token: str, url: str, offset: int, declared: int, body: bytes):
    """A PATCH that declares `declared` bytes, sends only `body` (fewer) and hangs up; waits
    until the server has closed the connection too, so it is done with the request."""
    assert len(body) < declared
    head_lines = [
        f"PATCH {path_of(url)} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Authorization: Token {token}",
        "Tus-Resumable: 1.0.0",
        f"Upload-Offset: {offset}",
        f"Content-Type: {CHUNK_TYPE}",
        f"Content-Length: {declared}",
    ]
    request = ("\r\n".join(head_lines) + "\r\n\r\n").encode() + body
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(request)
        connection.shutdown(socket.SHUT_WR)
        while connection.recv(65536):  # whatever the server answers, until it closes
            pass


# tuspy: interrupted and resumed by a new client.


def test_tuspy_upload_resumed_by_a_new_client_imports_every_row_once(server, alice, tus_csv):
    """A new tuspy client given only the upload's URL resumes at the server's offset, and the
    completed upload's import (found by listing, and by HEAD) holds every row once."""
    size = tus_csv.path.stat().st_size
    with tus_csv.path.open("rb") as file:
        first = tus_client(server, alice).uploader(
            file_stream=file,
            chunk_size=CHUNK,
            metadata={"filename": "responses.csv", "dataset": "tuspy"},
        )
        first.upload(stop_at=5 * CHUNK)
    assert first.offset == 5 * CHUNK
    url = first.url
    assert "Collect-Task-Id" not in head(alice, url).headers

    with tus_csv.path.open("rb") as file:
        second = tus_client(server, alice).uploader(file_stream=file, url=url, chunk_size=CHUNK)
        assert second.offset == server_offset(alice, url) == 5 * CHUNK
        assert 0 < second.offset < size
        second.upload()
    assert second.offset == size

    completing = second.request.response_headers
    done = head(alice, url).headers
    assert (done["Upload-Offset"], done["Upload-Length"]) == (str(size), str(size))
    listed = job_of_upload(alice, upload_id_of(url))
    assert listed["task_id"] == done["Collect-Task-Id"] == completing["collect-task-id"]
    assert completing["collect-task-url"].endswith(f"/api/tasks/{listed['task_id']}/")
    job = alice.wait_for_status(listed["task_id"], "completed")
    assert (job["dataset"], job["filename"]) == ("tuspy", "responses.csv")
    assert_imported_exactly_once(server, job, tus_csv.rows)


# A chunk broken off mid-transfer.


def test_a_chunk_cut_off_mid_transfer_resumes_from_the_servers_offset(server, alice, tus_csv):
    """After a PATCH that breaks off, the server's offset lies within what arrived (none or
    part of the chunk), and resuming there gives back the exact file."""
    content = tus_csv.path.read_bytes()
    start = 2 * CHUNK
    with tus_csv.path.open("rb") as file:
        first = tus_client(server, alice).uploader(
            file_stream=file, chunk_size=CHUNK, metadata={"dataset": "cut-off"}
        )
        first.upload(stop_at=start)
    sent = content[start : start + CHUNK + 12_345]

    send_cut_off_patch(server.port, alice.token, first.url, start, 4 * CHUNK, sent)

    offset = server_offset(alice, first.url)
    assert start <= offset <= start + len(sent)
    with tus_csv.path.open("rb") as file:
        resumed = tus_client(server, alice).uploader(
            file_stream=file, url=first.url, chunk_size=CHUNK
        )
        assert resumed.offset == offset
        resumed.upload()
    assert resumed.offset == len(content)
    task_id = resumed.request.response_headers["collect-task-id"]
    job = alice.wait_for_status(task_id, "completed")
    assert_imported_exactly_once(server, job, tus_csv.rows)
    assert server.segment_ids(task_id) == sorted(file_ids(tus_csv.path))


# Compressed files.


def test_a_gzipped_csv_uploaded_by_tus_imports_every_row(server, alice, tus_csv, tmp_path):
    """A .csv.gz file is decompressed on import: every row lands once."""
    packed = tmp_path / "responses.csv.gz"
    packed.write_bytes(gzip.compress(tus_csv.path.read_bytes()))
    assert packed.stat().st_size < tus_csv.path.stat().st_size

    uploader = upload_whole(server, alice, packed, "gzipped")

    task_id = uploader.request.response_headers["collect-task-id"]
    job = alice.wait_for_status(task_id, "completed")
    assert job["upload_id"] == upload_id_of(uploader.url)
    assert_imported_exactly_once(server, job, tus_csv.rows)


def write_gzip_bomb(path: Path, inflated: int) -> None:
    """A valid CSV, gzip-compressed, of one record repeated until it is `inflated` bytes."""
    block = b"1,2025-03-01T12:00:00Z,yes\r\n" * 40_000
    with gzip.open(path, "wb", compresslevel=9) as packed:
        packed.write(b"id,submitted_at,answer\r\n")
        for _ in range(inflated // len(block) + 1):
            packed.write(block)


def test_a_gzip_bomb_fails_its_import_at_the_limit_and_leaves_no_rows(start_server, tmp_path):
    """A small gzip file that inflates far past COLLECT_MAX_UPLOAD_BYTES uploads (it is small),
    but its import fails, naming the limit, and keeps none of the rows it wrote."""
    # Batches of 2,000 rows, so that some commit before the limit.
    small = start_server(COLLECT_MAX_UPLOAD_BYTES=str(SMALL_LIMIT), COLLECT_BATCH_ROWS="2000")
    user = small.client("mallory")
    bomb = tmp_path / "bomb.csv.gz"
    write_gzip_bomb(bomb, 20 * SMALL_LIMIT)
    assert bomb.stat().st_size < SMALL_LIMIT // 10

    uploader = upload_whole(small, user, bomb, "bomb")

    task_id = uploader.request.response_headers["collect-task-id"]
    job = user.wait_for_status(task_id, "failed")
    assert "decompresses to more than the limit" in job["error"], job
    assert str(SMALL_LIMIT) in job["error"]
    # It had committed batches before the limit; they are rolled back, not held.
    assert job["progress"]["rows_done"] == 0 and job["rows_rolled_back"] > 0, job
    assert not small.segment_exists(task_id), "the failed import's rows are still there"


# Concatenation.


def create_upload(user: Client, content: bytes, **headers: str) -> Reply:
    """POST /api/uploads/ with the content as the first (here: only) chunk."""
    headers = {**TUS, "Upload-Length": str(len(content)), "Content-Type": CHUNK_TYPE, **headers}
    return user.request("POST", "/api/uploads/", body=content, headers=headers)


def test_two_partial_uploads_concatenated_import_every_row(server, alice, tus_csv):
    """Two `partial` uploads, the halves of a file split at a line, joined by a `final`
    upload: it is complete at once (201 with the job), imports every row, takes no PATCH."""
    content = tus_csv.path.read_bytes()
    middle = content.index(b"\r\n", len(content) // 2) + 2
    urls = []
    for half in (content[:middle], content[middle:]):
        reply = create_upload(alice, half, **{"Upload-Concat": "partial"})
        assert reply.status == 201, reply.body
        assert reply.headers["Upload-Offset"] == str(len(half))
        assert "Collect-Task-Id" not in reply.headers  # a partial upload imports nothing
        urls.append(reply.headers["Location"])

    final = alice.request(
        "POST",
        "/api/uploads/",
        headers={
            **TUS,
            "Upload-Concat": f"final;{urls[0]} {urls[1]}",
            "Upload-Metadata": metadata(filename="joined.csv", dataset="concatenated"),
        },
    )

    assert final.status == 201, final.body
    assert final.headers["Upload-Offset"] == final.headers["Upload-Length"] == str(len(content))
    task_id = final.headers["Collect-Task-Id"]
    assert final.headers["Collect-Task-Url"].endswith(f"/api/tasks/{task_id}/")
    final_url = final.headers["Location"]
    described = head(alice, final_url).headers
    assert described["Upload-Concat"] == f"final;{urls[0]} {urls[1]}"
    assert described["Collect-Task-Id"] == task_id
    job = alice.wait_for_status(task_id, "completed")
    assert (job["filename"], job["dataset"]) == ("joined.csv", "concatenated")
    assert job["upload_id"] == upload_id_of(final_url)
    assert_imported_exactly_once(server, job, tus_csv.rows)

    more = alice.request(
        "PATCH",
        path_of(final_url),
        body=b"1,2,3\r\n",
        headers={**TUS, "Upload-Offset": str(len(content)), "Content-Type": CHUNK_TYPE},
    )
    assert more.status == 403, (more.status, more.body)


# tus-js-client, from Node.


@pytest.fixture(scope="session")
def tusjs() -> Path:
    """tests/e2e/tusjs with its packages installed (`npm ci`, once)."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not on PATH: the tus-js-client test needs Node")
    if not (TUSJS_DIR / "node_modules" / "tus-js-client").is_dir():
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=TUSJS_DIR,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT_S,
        )
        assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
    return TUSJS_DIR


def test_tus_js_client_upload_aborted_and_resumed_imports_every_row(server, alice, tus_csv, tusjs):
    """tus-js-client (Node) aborts an upload part way and resumes it by URL with a new
    Upload; the server offers the offset it had, and the import holds every row once."""
    result = subprocess.run(
        ["node", "upload.mjs", str(tus_csv.path)],
        cwd=tusjs,
        env={
            **os.environ,
            "COLLECT_URL": f"http://127.0.0.1:{server.port}",
            "COLLECT_TOKEN": alice.token,
        },
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_S,
    )

    assert result.returncode == 0, f"upload.mjs failed:\n{result.stdout}\n{result.stderr}"
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert 0 < outcome["resumedFrom"] < tus_csv.path.stat().st_size
    assert outcome["resumedFrom"] % CHUNK == 0  # it aborted between chunks
    assert head(alice, outcome["url"]).headers["Collect-Task-Id"] == outcome["taskId"]
    job = alice.wait_for_status(outcome["taskId"], "completed")
    assert (job["filename"], job["dataset"]) == ("responses.csv", "tus-js-client")
    assert job["upload_id"] == upload_id_of(outcome["url"])
    assert_imported_exactly_once(server, job, tus_csv.rows)
