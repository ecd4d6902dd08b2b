"""The HTTP API in-process: status codes, the job's JSON shape, ownership, bad input."""

import gzip
import io

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from collect.jobs.models import Job
from collect.jobs.runner import run_job
from collect.jobs.states import Status
from tests.conftest import csv_bytes

pytestmark = pytest.mark.django_db(transaction=True)
DATA = csv_bytes([["id", "submitted_at"], ["1", "2024-01-01"], ["2", "2024-01-02"]])


def upload(api, content: bytes = DATA, field: str = "file", name="form.csv", **fields):
    document = io.BytesIO(content)
    document.name = name
    return api.post("/api/upload-file/", {field: document, **fields}, format="multipart")


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.mark.parametrize("field", ["file", "uploaded_file"])
def test_upload_answers_202_with_the_queued_job(api, field):
    response = upload(api, field=field)
    assert response.status_code == 202
    job = response.json()
    assert job["kind"] == "import" and job["status"] == "queued"
    assert job["dataset"] == "responses" and job["filename"] == "form.csv"
    assert job["progress"] == {
        "rows_done": 0,
        "rows_rejected": 0,
        "bytes_done": len(b"id,submitted_at\r\n"),
        "bytes_total": len(DATA),
        "percent": pytest.approx(100 * 17 / len(DATA), abs=0.1),
        "rows_per_s": 0.0,
        "eta_s": None,
    }
    assert {"created_at", "started_at", "finished_at", "error", "download_url"} <= set(job)


def test_a_gzip_upload_is_imported_decompressed(api):
    response = upload(api, gzip.compress(DATA), name="form.csv.gz")
    assert response.status_code == 202
    job = run_job(response.json()["task_id"], worker="w")
    assert (job.status, job.rows_done) == (Status.COMPLETED, 2)


def test_a_completed_job_reports_full_progress(api):
    task_id = upload(api).json()["task_id"]
    run_job(task_id, worker="w")
    job = api.get(f"/api/tasks/{task_id}/").json()
    assert job["status"] == "completed"
    assert job["progress"]["rows_done"] == 2 and job["progress"]["percent"] == 100.0
    assert job["started_at"] and job["finished_at"] and job["progress"]["eta_s"] is None


@pytest.mark.parametrize(
    ("content", "fields", "message"),
    [
        (b"", {}, "the file is empty"),
        (b"a,a\n1,2\n", {}, "the header names column 'a' twice"),
        (b"\x00\x01\x02binary", {}, "the header contains a NUL character"),
        (DATA, {"on_error": "explode"}, 'on_error: "explode" is not a valid choice.'),
        (DATA, {"timestamp_column": "nope"}, "timestamp_column 'nope' is not in the file's header"),
    ],
)
def test_unusable_uploads_are_refused_with_a_reason(api, content, fields, message):
    response = upload(api, content, **fields)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(message)
    assert Job.objects.count() == 0


def test_an_upload_without_a_file_is_refused(api):
    response = api.post("/api/upload-file/", {"dataset": "x"}, format="multipart")
    assert response.status_code == 400
    assert response.json()["detail"] == "file: attach the CSV file as `file`"


def test_a_header_that_differs_from_the_dataset_is_refused(api):
    assert upload(api).status_code == 202
    response = upload(api, csv_bytes([["other", "columns"], ["1", "2"]]))
    assert response.status_code == 400
    assert "does not match the columns of dataset 'responses'" in response.json()["detail"]
    assert upload(api, csv_bytes([["other"], ["1"]]), dataset="second").status_code == 202


@override_settings(COLLECT_MAX_UPLOAD_BYTES=1000)
def test_an_upload_over_the_limit_is_413(api):
    response = upload(api, DATA + b"3,2024-01-03\r\n" * 100)
    assert response.status_code == 413
    assert "limit of 1000 bytes" in response.json()["detail"]
    assert Job.objects.count() == 0


def test_control_through_both_paths(api):
    task_id = upload(api).json()["task_id"]
    for path, expected in [
        (f"/api/pause/{task_id}/", "paused"),
        (f"/api/pause/{task_id}/", "paused"),  # idempotent
        (f"/api/resume/{task_id}/", "queued"),
        (f"/api/tasks/{task_id}/pause/", "paused"),
        (f"/api/tasks/{task_id}/resume/", "queued"),
        (f"/api/revoke/{task_id}/", "terminated"),
        (f"/api/tasks/{task_id}/terminate/", "terminated"),
    ]:
        response = api.post(path)
        assert (path, response.status_code, response.json()["status"]) == (path, 200, expected)
    job = api.get(f"/api/tasks/{task_id}/").json()
    assert job["termination_reason"] == "terminated by user" and job["finished_at"]


def test_a_refused_transition_is_409_naming_the_state(api):
    task_id = upload(api).json()["task_id"]
    run_job(task_id, worker="w")
    for action in ("pause", "terminate"):
        response = api.post(f"/api/tasks/{task_id}/{action}/")
        assert response.status_code == 409
        assert response.json() == {
            "detail": f"cannot {action} a job that is completed",
            "status": "completed",
        }


def test_another_users_job_is_404_and_staff_see_all(api, user, other_user):
    task_id = upload(api).json()["task_id"]
    bob = client_for(other_user)
    for method, path in [
        ("get", f"/api/tasks/{task_id}/"),
        ("post", f"/api/tasks/{task_id}/pause/"),
        ("post", f"/api/revoke/{task_id}/"),
        ("get", f"/api/tasks/{task_id}/errors/"),
    ]:
        assert getattr(bob, method)(path).status_code == 404
    assert bob.get("/api/tasks/").json()["count"] == 0
    assert Job.objects.get(pk=task_id).status == Status.QUEUED

    staff = get_user_model().objects.create_user("root", is_staff=True)
    assert client_for(staff).get(f"/api/tasks/{task_id}/").status_code == 200


@pytest.mark.parametrize("task_id", ["not-a-uuid", "123", "00000000-0000-0000-0000-000000000000"])
def test_unknown_or_malformed_task_ids_are_404(api, task_id):
    assert api.get(f"/api/tasks/{task_id}/").status_code == 404
    assert api.post(f"/api/pause/{task_id}/").status_code == 404


def test_requests_without_credentials_are_refused(db):
    assert APIClient().get("/api/tasks/").status_code in (401, 403)
    assert APIClient().post("/api/upload-file/").status_code in (401, 403)


def test_the_task_list_is_newest_first_paginated_and_filtered(api):
    ids = [upload(api).json()["task_id"] for _ in range(3)]
    api.post(f"/api/pause/{ids[0]}/")
    listing = api.get("/api/tasks/").json()
    assert listing["count"] == 3
    assert [job["task_id"] for job in listing["results"]] == ids[::-1]
    paused = api.get("/api/tasks/?status=paused").json()["results"]
    assert [job["task_id"] for job in paused] == [ids[0]]
    assert api.get("/api/tasks/?kind=export").json()["count"] == 0
    assert api.get("/api/tasks/?status=sleeping").status_code == 400
    assert api.get("/api/tasks/?kind=other").status_code == 400


def test_rejected_rows_download_as_csv(api):
    data = b"id,submitted_at\n1,2024-01-01\n2\n3,never\n"
    task_id = upload(api, data, on_error="skip").json()["task_id"]
    run_job(task_id, worker="w")
    response = api.get(f"/api/tasks/{task_id}/errors/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert b"".join(response.streaming_content).decode() == (
        "line,reason,content\r\n"
        '3,"expected 2 fields, found 1",2\r\n'
        "4,column 'submitted_at' is not an ISO 8601 date-time: 'never',\"3,never\"\r\n"
    )


def test_the_openapi_schema_describes_every_operation(api):
    response = api.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    operations = [op for item in schema["paths"].values() for op in item.values()]
    assert len(operations) == 16  # with tus POST, PATCH and DELETE on /api/uploads/
    assert all(op.get("summary") or op.get("description") for op in operations)
    assert "/api/upload-file/" in schema["paths"] and "/api/revoke/{task_id}/" in schema["paths"]


def test_the_docs_page_is_served(client):
    response = client.get("/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
