"""The HTTP API in-process: status codes, the job's JSON shape, ownership, bad input."""

import gzip
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from collect.jobs.models import Job
from collect.jobs.runner import run_job
from collect.jobs.states import Kind, Status
from tests.conftest import TUS, client_for, csv_bytes, upload_file
from tests.factories import dataset_factory, job_factory, user_factory

pytestmark = pytest.mark.django_db
DATA = csv_bytes([["id", "submitted_at"], ["1", "2024-01-01"], ["2", "2024-01-02"]])


def upload(api, content: bytes = DATA, **options):
    return upload_file(api, content, **options)


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


@pytest.mark.parametrize(
    ("header", "difference"),
    [
        (["id"], 'it lacks "submitted_at"'),
        (["id", "submitted_at", "x"], 'it has "x", which the dataset has not'),
        (
            ["submitted_at", "id"],
            'its columns are in another order: "submitted_at" and "id" '
            'instead of "id" and "submitted_at"',
        ),
    ],
)
def test_a_header_mismatch_names_the_difference_in_words(api, user, header, difference):
    dataset_factory(user, "responses", ["id", "submitted_at"])
    response = upload(api, csv_bytes([header, ["1"] * len(header)]))
    assert response.status_code == 400
    assert response.json()["detail"] == (
        f"the file's header does not match the columns of dataset 'responses': {difference}. "
        "Upload it into another dataset (a new name makes one)"
    )


def test_a_header_that_differs_from_the_dataset_is_refused(api, user):
    dataset_factory(user, "responses", ["id", "submitted_at"])
    response = upload(api, csv_bytes([["other", "columns"], ["1", "2"]]))
    assert response.status_code == 400
    assert response.json() == {
        "detail": "the file's header does not match the columns of dataset 'responses': "
        'it lacks "id" and "submitted_at"; it has "other" and "columns", which the dataset '
        "has not. Upload it into another dataset (a new name makes one)",
        "expected": ["id", "submitted_at"],
        "found": ["other", "columns"],
    }
    assert Job.objects.count() == 0
    assert upload(api, csv_bytes([["other"], ["1"]]), dataset="second").status_code == 202


@override_settings(COLLECT_MAX_UPLOAD_BYTES=1000)
def test_an_upload_over_the_limit_is_413(api):
    response = upload(api, DATA + b"3,2024-01-03\r\n" * 100)
    assert response.status_code == 413
    assert "limit of 1000 bytes" in response.json()["detail"]
    assert Job.objects.count() == 0


def test_control_through_both_paths(api, user):
    task_id = str(job_factory(user).pk)
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
        assert (path, response.status_code) == (path, 200)
        # The answer is the job as it is now, in the database too.
        assert response.json() == api.get(f"/api/tasks/{task_id}/").json()
        job = Job.objects.get(pk=task_id)
        assert (path, response.json()["status"], job.status) == (path, expected, expected)
        assert (job.paused_at is not None) is (expected == "paused"), path
    assert (job.termination_reason, job.terminated_by) == ("terminated by user", user)
    assert job.finished_at is not None
    assert response.json()["termination_reason"] == "terminated by user"
    assert response.json()["finished_at"] == job.finished_at.isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize("status", [Status.COMPLETED, Status.FAILED])
def test_a_refused_transition_is_409_naming_the_state(api, user, status):
    job = job_factory(user, status=status)
    for action in ("pause", "resume", "terminate"):
        response = api.post(f"/api/tasks/{job.pk}/{action}/")
        assert response.status_code == 409
        assert response.json() == {
            "detail": f"cannot {action} a job that is {status}",
            "status": status,
        }
    assert Job.objects.get(pk=job.pk).status == status


def test_another_users_job_is_404_and_staff_see_all(api, user, other_user):
    task_id = str(job_factory(user).pk)
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

    staff = client_for(user_factory("root", is_staff=True))
    assert staff.get(f"/api/tasks/{task_id}/").json()["task_id"] == task_id
    assert [job["task_id"] for job in staff.get("/api/tasks/").json()["results"]] == [task_id]


@pytest.mark.parametrize("task_id", ["not-a-uuid", "123", "00000000-0000-0000-0000-000000000000"])
def test_unknown_or_malformed_task_ids_are_404(api, task_id):
    for response in (api.get(f"/api/tasks/{task_id}/"), api.post(f"/api/pause/{task_id}/")):
        assert response.status_code == 404
        assert response.json() == {"detail": f"no task {task_id}"}


def test_requests_without_credentials_are_401(user):
    job = job_factory(user)
    anonymous = APIClient()
    for method, path in [
        ("get", "/api/tasks/"),
        ("get", f"/api/tasks/{job.pk}/"),
        ("post", "/api/upload-file/"),
        ("post", f"/api/pause/{job.pk}/"),
        ("post", f"/api/tasks/{job.pk}/terminate/"),
        ("post", "/api/exports/"),
    ]:
        response = getattr(anonymous, method)(path, **TUS)
        assert (path, response.status_code) == (path, 401)
        assert response.json() == {"detail": "Authentication credentials were not provided."}
        assert response["WWW-Authenticate"] == "Token"
    assert Job.objects.get(pk=job.pk).status == Status.QUEUED


def test_a_wrong_token_is_401(user):
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    response = stranger.get("/api/tasks/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}


def test_the_task_list_is_newest_first_paginated_and_filtered(api, user, other_user):
    start = timezone.now() - timedelta(hours=1)
    statuses = [Status.PAUSED, Status.QUEUED, Status.COMPLETED]
    ids = [
        str(job_factory(user, status=status, created_at=start + timedelta(minutes=n)).pk)
        for n, status in enumerate(statuses)
    ]
    export = str(job_factory(user, Kind.EXPORT, created_at=start + timedelta(minutes=5)).pk)
    job_factory(other_user)  # not alice's
    listing = api.get("/api/tasks/").json()
    assert listing["count"] == 4
    assert [job["task_id"] for job in listing["results"]] == [export, *ids[::-1]]
    paused = api.get("/api/tasks/?status=paused").json()["results"]
    assert [job["task_id"] for job in paused] == [ids[0]]
    exports = api.get("/api/tasks/?kind=export").json()
    assert (exports["count"], exports["results"][0]["task_id"]) == (1, export)
    imports = api.get("/api/tasks/?kind=import&status=completed").json()["results"]
    assert [job["task_id"] for job in imports] == [ids[2]]
    refused = api.get("/api/tasks/?status=sleeping")
    assert refused.status_code == 400
    assert refused.json()["detail"].startswith("unknown status 'sleeping'; one of queued, ")
    refused = api.get("/api/tasks/?kind=other")
    assert (refused.status_code, refused.json()) == (
        400,
        {"detail": "unknown kind 'other'; one of import, export"},
    )


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
    # With tus POST, PATCH and DELETE on /api/uploads/, and /healthz, /readyz, /metrics.
    assert len(operations) == 22
    assert all(op.get("summary") or op.get("description") for op in operations)
    assert "/api/upload-file/" in schema["paths"] and "/api/revoke/{task_id}/" in schema["paths"]


def schema_of(api) -> dict:
    response = api.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def test_the_schema_offers_a_file_picker_and_links_an_upload_to_its_task(api):
    schema = schema_of(api)
    upload = schema["paths"]["/api/upload-file/"]["post"]
    form = upload["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    fields = schema["components"]["schemas"][form.rsplit("/", 1)[1]]["properties"]
    assert fields["file"] == {"type": "string", "format": "binary", "description": "The CSV file."}
    links = upload["responses"]["202"]["links"]
    assert links["task"] == {
        "operationId": "task_retrieve",
        "parameters": {"task_id": "$response.body#/task_id"},
        "description": "The task, with its progress.",
    }
    tus_links = schema["paths"]["/api/uploads/{upload_id}/"]["patch"]["responses"]["204"]["links"]
    assert tus_links["task"]["parameters"] == {"task_id": "$response.header.Collect-Task-Id"}
    assert set(upload["responses"]) == {
        "202",
        "400",
        "401",
        "409",
        "413",
        "415",
        "429",
        "503",
        "507",
    }


def test_the_schema_documents_statuses_enums_parameters_and_examples(api):
    schema = schema_of(api)
    paths = schema["paths"]
    tasks = paths["/api/tasks/"]["get"]
    status = next(p for p in tasks["parameters"] if p["name"] == "status")
    assert sorted(status["schema"]["enum"]) == sorted(s.value for s in Status)
    assert {"200", "400", "404"} <= set(tasks["responses"])
    brief_export = paths["/api/export/"]["get"]
    assert {p["name"] for p in brief_export["parameters"]} >= {"from_date", "to_date", "raw"}
    example = brief_export["responses"]["202"]["content"]["application/json"]["examples"]
    assert [value["value"]["kind"] for value in example.values()] == ["export"]
    tus_create = paths["/api/uploads/"]["post"]["responses"]
    assert {"201", "400", "409", "412", "413", "415"} <= set(tus_create)
    patch = paths["/api/uploads/{upload_id}/"]["patch"]["responses"]
    assert {"204", "409", "410", "412", "415", "460"} <= set(patch)
    error = schema["components"]["schemas"]["Error"]
    assert error["properties"] == {"detail": {"type": "string"}}


def test_raw_on_the_briefs_export_is_read(api, user):
    task_id = upload(api).json()["task_id"]
    run_job(task_id, worker="w")
    response = api.get("/api/export/?from_date=2024-01-01&to_date=2024-01-02&raw=true")
    assert response.status_code == 202
    assert Job.objects.get(pk=response.json()["task_id"]).params["raw"] is True


def test_the_docs_page_is_served(client):
    response = client.get("/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def test_the_task_list_filters_by_a_prefix_of_the_task_id(api, user, other_user):
    mine = job_factory(user)
    theirs = job_factory(other_user)
    for prefix in (str(mine.pk)[:6], str(mine.pk)[:13].upper(), str(mine.pk)):
        page = api.get("/api/tasks/", {"id_prefix": prefix}).json()
        assert [job["task_id"] for job in page["results"]] == [str(mine.pk)], prefix
    assert api.get("/api/tasks/", {"id_prefix": str(theirs.pk)}).json()["count"] == 0
    refused = api.get("/api/tasks/", {"id_prefix": "xyz"})
    assert (refused.status_code, refused.json()["detail"]) == (
        400,
        "id_prefix 'xyz' is not the start of a task id (hex digits and -)",
    )
