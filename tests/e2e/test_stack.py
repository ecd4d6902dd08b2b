"""End-to-end tests of a running Collect: a real `collect serve` process (with in-process
workers on SQLite, or on the distributed stack with PostgreSQL and Celery workers, see
conftest), driven over HTTP as a user would, with its database read directly (read-only)
to check what the jobs really wrote.

The generated file (`big_csv`) is big enough that its import runs for seconds, so it is surely
still running when a test pauses, terminates or kills it. Every record's first column is a
unique id, so an import done exactly once holds N rows with N distinct ids.
"""

import csv
import io
import time

import pytest

from tests.e2e.conftest import assert_imported_exactly_once

pytestmark = pytest.mark.e2e

STEADY_WINDOW_S = 1.2
# alice imports the same generated file in several tests on purpose: with `force`, as a user
# who means to import it again would (without it, the same bytes again answer 409).
SMALL_HEADER = ["id", "submitted_at", "answer"]


def small_csv(rows: list[list[str]], header: list[str] = SMALL_HEADER) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows([header, *rows])
    return buffer.getvalue().encode()


def good_row(number: int) -> list[str]:
    return [str(number), f"2025-03-{number % 28 + 1:02d}T12:00:00Z", f"answer {number}"]


def assert_rolled_back(server, job: dict, status: str) -> None:
    assert job["status"] == status, job
    assert not server.segment_exists(job["task_id"]), "the job's rows are still there"


# Pause, resume, terminate.


def test_pause_stops_the_writes_and_resume_completes_exactly_once(server, alice, big_csv):
    task_id = alice.start_import(big_csv.path, force="true")["task_id"]
    alice.wait_until_writing(task_id)

    reply = alice.control(task_id, "pause")
    assert reply.status == 200, reply.body
    assert reply.json()["status"] in ("pausing", "paused")
    paused = alice.wait_for_status(task_id, "paused", timeout=10)
    rows_done = paused["progress"]["rows_done"]
    assert 0 < rows_done < big_csv.rows
    again = alice.control(task_id, "pause")
    assert (again.status, again.json()["status"]) == (200, "paused")

    # While paused nothing moves: not the progress, not the rows in the database.
    deadline = time.monotonic() + STEADY_WINDOW_S
    while time.monotonic() < deadline:
        assert alice.job(task_id)["progress"]["rows_done"] == rows_done
        stats = server.segment_stats(task_id)
        assert (stats.rows, stats.distinct_ids) == (rows_done, rows_done)
        time.sleep(0.1)
    assert alice.job(task_id)["status"] == "paused"

    reply = alice.control(task_id, "resume")
    assert reply.status == 200, reply.body
    assert reply.json()["status"] in ("queued", "running")
    done = alice.wait_for_status(task_id, "completed")
    assert_imported_exactly_once(server, done, big_csv.rows)


def test_a_pause_ends_the_batch_in_flight(start_server, big_csv):
    """Batches here would hold the whole file; a pause still lands within one, which then
    commits what it wrote before the pause. (A batch renews its lease when it commits: the
    lease is as long as the batches here.)"""
    long = {"COLLECT_BATCH_SECONDS": "600", "COLLECT_LEASE_SECONDS": "600"}
    server = start_server(COLLECT_BATCH_ROWS="100000000", **long)
    client = server.client("alice")
    task_id = client.start_import(big_csv.path)["task_id"]
    client.wait_for_status(task_id, "running")
    time.sleep(0.5)  # well into the first batch

    assert client.control(task_id, "pause").status == 200
    paused = client.wait_for_status(task_id, "paused", "completed", timeout=30)
    assert paused["status"] == "paused"
    rows_done = paused["progress"]["rows_done"]
    assert 0 < rows_done < big_csv.rows
    stats = server.segment_stats(task_id)
    assert (stats.rows, stats.distinct_ids) == (rows_done, rows_done)

    assert client.control(task_id, "resume").status == 200
    done = client.wait_for_status(task_id, "completed")
    assert_imported_exactly_once(server, done, big_csv.rows)


def test_terminate_mid_import_removes_every_row(server, alice, big_csv):
    task_id = alice.start_import(big_csv.path, force="true")["task_id"]
    alice.wait_until_writing(task_id)
    assert server.segment_stats(task_id).rows > 0

    reply = alice.control(task_id, "terminate")
    assert reply.status == 200, reply.body
    assert reply.json()["status"] in ("terminating", "terminated")
    job = alice.wait_for_status(task_id, "terminated", timeout=10)

    assert_rolled_back(server, job, "terminated")
    assert job["termination_reason"]
    assert job["finished_at"]
    listed = alice.get("/api/tasks/?status=terminated").json()["results"]
    assert task_id in [each["task_id"] for each in listed]


def test_terminating_a_paused_job_rolls_it_back_at_once(server, alice, big_csv):
    task_id = alice.start_import(big_csv.path, force="true")["task_id"]
    alice.wait_until_writing(task_id)
    assert alice.control(task_id, "pause").status == 200
    alice.wait_for_status(task_id, "paused", timeout=10)
    assert server.segment_stats(task_id).rows > 0

    reply = alice.control(task_id, "terminate")

    assert reply.status == 200, reply.body
    assert_rolled_back(server, reply.json(), "terminated")
    assert alice.control(task_id, "resume").status == 409


def test_a_job_paused_too_long_is_terminated(impatient_server, big_csv):
    client = impatient_server.client("carol")
    task_id = client.start_import(big_csv.path)["task_id"]
    client.wait_until_writing(task_id)
    assert client.control(task_id, "pause").status == 200

    job = client.wait_for_status(task_id, "terminated", timeout=10)
    assert job["termination_reason"] == "pause timeout"
    assert_rolled_back(impatient_server, job, "terminated")


def test_a_job_resumed_before_the_pause_timeout_completes(impatient_server, big_csv):
    client = impatient_server.client("carol")
    task_id = client.start_import(big_csv.path)["task_id"]
    client.wait_until_writing(task_id)
    assert client.control(task_id, "pause").status == 200
    client.wait_for_status(task_id, "paused", timeout=10)
    assert client.control(task_id, "resume").status == 200

    # The import runs for several pause timeouts more: a stale pause must not end it.
    job = client.wait_for_status(task_id, "completed")
    assert job["termination_reason"] == ""
    assert job["paused_at"] is None
    assert_imported_exactly_once(impatient_server, job, big_csv.rows)


# Crash and restart.


@pytest.mark.parametrize("hard", [True, False], ids=["kill-9", "sigterm"])
def test_a_restart_mid_import_resumes_it_and_imports_every_row_once(start_server, big_csv, hard):
    first = start_server()
    client = first.client("dave")
    task_id = client.start_import(big_csv.path)["task_id"]
    client.wait_until_writing(task_id)

    if hard:
        first.kill_hard()
    else:
        first.stop()
        assert first.process.returncode == 0, "SIGTERM did not stop the server cleanly"
    rows_at_stop = first.segment_stats(task_id).rows
    assert 0 < rows_at_stop < big_csv.rows, "the server did not stop mid-import"

    second = start_server(first.data_dir)
    client = second.client("dave")
    job = client.wait_for_status(task_id, "completed")
    assert_imported_exactly_once(second, job, big_csv.rows)


# Bad input.

PNG_START = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x06\x00"


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        pytest.param(b"", "empty", id="empty"),
        pytest.param(b"id,answer,id\r\n1,yes,2\r\n", "'id' twice", id="duplicate-names"),
        pytest.param(b"id,,answer\r\n1,2,3\r\n", "empty column name", id="empty-name"),
        pytest.param(PNG_START + bytes(range(256)) * 4, "UTF-8", id="binary"),
        pytest.param("naïve,answer\r\n1,2\r\n".encode("latin-1"), "UTF-8", id="not-utf-8"),
    ],
)
def test_a_file_without_a_usable_header_is_refused(alice, content, complaint):
    jobs_before = alice.get("/api/tasks/").json()["count"]

    reply = alice.upload(content, dataset="bad-headers")

    assert reply.status == 400, (reply.status, reply.body)
    assert complaint in reply.json()["detail"]
    assert alice.get("/api/tasks/").json()["count"] == jobs_before


def file_with_short_row() -> tuple[bytes, int, int]:
    """Nine good rows and, on line 5, one with a field missing: (content, line, good rows)."""
    rows = [good_row(number) for number in range(1, 11)]
    rows[3] = rows[3][:-1]
    return small_csv(rows), 5, 9


def test_a_bad_row_fails_an_import_with_on_error_abort(server, alice):
    content, bad_line, _ = file_with_short_row()
    task_id = alice.start_import(content, dataset="short-row-abort", on_error="abort")["task_id"]

    job = alice.wait_for_status(task_id, "failed")

    assert f"line {bad_line}" in job["error"]
    assert_rolled_back(server, job, "failed")


def test_a_bad_row_is_listed_and_skipped_with_on_error_skip(server, alice):
    content, bad_line, good_rows = file_with_short_row()
    task_id = alice.start_import(content, dataset="short-row-skip", on_error="skip")["task_id"]

    job = alice.wait_for_status(task_id, "completed")

    assert job["progress"]["rows_done"] == good_rows
    assert job["progress"]["rows_rejected"] == 1
    ids = server.segment_ids(task_id)
    assert ids == sorted(str(number) for number in range(1, 11) if number != bad_line - 1)
    reply = alice.get(f"/api/tasks/{task_id}/errors/")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/csv")
    header, *rejected = list(csv.reader(io.StringIO(reply.text)))
    assert header == ["line", "reason", "content"]
    assert [int(row[0]) for row in rejected] == [bad_line]
    assert rejected[0][1]


def test_the_briefs_field_name_uploaded_file_is_accepted(server, alice):
    content = small_csv([good_row(number) for number in range(1, 4)])
    job = alice.start_import(content, dataset="brief-field", file_field="uploaded_file")
    done = alice.wait_for_status(job["task_id"], "completed")
    assert_imported_exactly_once(server, done, 3)


# Who may see and do what.


@pytest.fixture(scope="module")
def completed_job(alice) -> dict:
    content = small_csv([good_row(number) for number in range(1, 6)])
    task_id = alice.start_import(content, dataset="finished")["task_id"]
    return alice.wait_for_status(task_id, "completed")


def test_another_users_job_is_not_found(alice, bob, completed_job):
    task_id = completed_job["task_id"]

    assert bob.get(f"/api/tasks/{task_id}/").status == 404
    for action in ("pause", "resume", "terminate"):
        assert bob.control(task_id, action).status == 404
    assert bob.get(f"/api/tasks/{task_id}/errors/").status == 404
    assert task_id not in [each["task_id"] for each in bob.get("/api/tasks/").json()["results"]]
    assert alice.job(task_id)["status"] == "completed"


@pytest.mark.parametrize("task_id", ["not-a-uuid", "12345", "00000000-0000-0000-0000-000000000000"])
def test_a_malformed_or_unknown_id_is_not_found(alice, task_id):
    assert alice.get(f"/api/tasks/{task_id}/").status == 404
    assert alice.control(task_id, "pause").status == 404
    assert alice.control(task_id, "revoke", brief_path=True).status == 404


def test_controlling_a_completed_job_is_a_conflict_naming_its_state(alice, completed_job):
    task_id = completed_job["task_id"]
    for action in ("pause", "resume", "terminate"):
        reply = alice.control(task_id, action)
        assert reply.status == 409, (action, reply.status, reply.body)
        body = reply.json()
        assert body["status"] == "completed"
        assert "completed" in body["detail"]
    assert alice.job(task_id)["status"] == "completed"


def test_a_request_without_token_is_refused(server, completed_job):
    anonymous = server.client()
    assert anonymous.get("/api/tasks/").status == 401
    assert anonymous.get(f"/api/tasks/{completed_job['task_id']}/").status == 401


# The brief's control paths.


def test_the_briefs_pause_resume_and_revoke_paths(server, alice, big_csv):
    task_id = alice.start_import(big_csv.path, force="true")["task_id"]
    alice.wait_until_writing(task_id)

    reply = alice.control(task_id, "pause", brief_path=True)
    assert reply.status == 200, reply.body
    assert reply.json()["status"] in ("pausing", "paused")
    paused = alice.wait_for_status(task_id, "paused", timeout=10)

    reply = alice.control(task_id, "resume", brief_path=True)
    assert reply.status == 200, reply.body
    assert reply.json()["status"] in ("queued", "running")
    alice.wait_until_writing(task_id, beyond=paused["progress"]["rows_done"])

    reply = alice.control(task_id, "revoke", brief_path=True)
    assert reply.status == 200, reply.body
    assert reply.json()["status"] in ("terminating", "terminated")
    job = alice.wait_for_status(task_id, "terminated", timeout=10)
    assert_rolled_back(server, job, "terminated")


# Documentation.


def test_the_api_docs_are_served(server):
    anonymous = server.client()
    docs = anonymous.get("/docs/")
    assert docs.status == 200
    assert docs.headers["Content-Type"].startswith("text/html")
    assert b"swagger" in docs.body.lower()

    assert anonymous.get("/api/schema/").body.startswith(b"openapi: 3.")
    schema = anonymous.get("/api/schema/?format=json")
    assert schema.status == 200, schema.body[:500]
    document = schema.json()
    assert document["openapi"].startswith("3.")
    for path in (
        "/api/upload-file/",
        "/api/pause/{task_id}/",
        "/api/resume/{task_id}/",
        "/api/revoke/{task_id}/",
        "/api/tasks/{task_id}/",
    ):
        assert path in document["paths"], path


# Exports.

NASTY_ROWS = [
    ["1", "2024-01-01T00:00:00Z", "comma, inside", 'quote "inside"'],
    ["2", "2024-01-01T12:00:00+02:00", "new\nline", "crlf\r\ninside"],
    ["3", "2024-01-01 23:59:59.999999", "", "  spaces kept  "],
    ["4", "2024-01-02", "ünïcödé ✓ 日本", "=1+2"],
]
NASTY_HEADER = ["id", "submitted_at", "text", "note"]


def downloaded(client, task_id: str) -> list[list[str]]:
    reply = client.get(f"/api/tasks/{task_id}/download/")
    assert reply.status == 200, reply.body[:300]
    assert reply.headers["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(reply.text, newline="")))


def test_an_export_gives_back_exactly_what_was_imported(server, alice):
    content = small_csv(NASTY_ROWS, NASTY_HEADER)
    task_id = alice.start_import(content, dataset="nasty")["task_id"]
    alice.wait_for_status(task_id, "completed")

    reply = alice.post("/api/exports/")  # no body: the range is required
    assert reply.status == 400
    reply = alice.get("/api/export/?from_date=2023-12-31&to_date=2024-01-02&dataset=nasty")
    assert reply.status == 202, reply.body
    export_id = reply.json()["task_id"]
    assert alice.get(f"/api/tasks/{export_id}/download/").status in (200, 409)
    job = alice.wait_for_status(export_id, "completed")
    assert job["download_url"].endswith(f"/api/tasks/{export_id}/download/")
    rows = downloaded(alice, export_id)
    assert rows[0] == NASTY_HEADER
    assert rows[1:4] == NASTY_ROWS[:3]
    assert rows[4] == [*NASTY_ROWS[3][:3], "'=1+2"]  # a formula cell, neutralised


def test_a_large_export_pauses_and_resumes_with_every_row_once(server, alice, big_csv):
    task_id = alice.start_import(big_csv.path, dataset="to-export")["task_id"]
    alice.wait_for_status(task_id, "completed", timeout=120)
    reply = alice.get("/api/export/?from_date=2000-01-01&to_date=2100-01-01&dataset=to-export")
    export_id = reply.json()["task_id"]
    alice.wait_until_writing(export_id)

    assert alice.control(export_id, "pause").status == 200
    paused = alice.wait_for_status(export_id, "paused", timeout=10)
    assert 0 < paused["progress"]["rows_done"] < big_csv.rows
    time.sleep(0.5)
    assert alice.job(export_id)["progress"] == paused["progress"]
    assert alice.get(f"/api/tasks/{export_id}/download/").status == 409

    assert alice.control(export_id, "resume").status == 200
    alice.wait_for_status(export_id, "completed", timeout=120)
    rows = downloaded(alice, export_id)
    assert len(rows) == 1 + big_csv.rows
    assert len({row[0] for row in rows[1:]}) == big_csv.rows
