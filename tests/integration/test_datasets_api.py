"""Datasets as a resource: per user, totals from completed imports only, 404 for another's."""

import pytest

from collect.jobs import services
from collect.jobs.models import Job
from collect.jobs.runner import run_job
from collect.jobs.states import Status
from tests.conftest import client_for, csv_bytes, upload_file
from tests.factories import dataset_factory, user_factory

pytestmark = pytest.mark.django_db
HEADER = ["id", "submitted_at", "answer"]
JUNE = csv_bytes([HEADER, ["1", "2025-06-03", "a"], ["2", "2025-06-01T23:30:00Z", "b"]])
JULY = csv_bytes(
    [HEADER, ["3", "2025-07-14", "c"], ["4", "2025-07-02", "d"], ["5", "2025-07-09", ""]]
)


def completed(start_import, content: bytes, **options):
    job = run_job(start_import(content, **options).pk, worker="w")
    assert job.status == Status.COMPLETED
    return job


def test_a_dataset_counts_rows_imports_and_days_of_completed_imports_only(api, user, start_import):
    completed(start_import, JUNE)
    completed(start_import, JULY)
    start_import(JULY, force=True)  # queued: not counted
    services.job_terminate(job_id=start_import(JUNE, force=True).pk)  # rolled back: not counted

    response = api.get("/api/datasets/responses/")

    assert response.status_code == 200
    body = response.json()
    assert body.pop("created_at")
    assert body == {
        "name": "responses",
        "owner": "alice",
        "columns": HEADER,
        "rows": 5,
        "imports": 2,
        "first_day": "2025-06-01",
        "last_day": "2025-07-14",
    }


def test_the_list_has_the_callers_datasets_by_name_paginated(api, user, other_user, start_import):
    completed(start_import, JUNE, dataset="june")
    dataset_factory(user, "empty", ["x"])
    dataset_factory(other_user, "bobs", ["y"])

    response = api.get("/api/datasets/")

    assert response.status_code == 200
    page = response.json()
    assert (page["count"], page["next"], page["previous"]) == (2, None, None)
    assert [(d["name"], d["rows"], d["imports"]) for d in page["results"]] == [
        ("empty", 0, 0),
        ("june", 2, 1),
    ]
    assert page["results"][0]["first_day"] is None and page["results"][0]["last_day"] is None


def test_another_users_dataset_is_404_and_staff_see_all(api, user, other_user):
    dataset_factory(other_user, "bobs", ["y"])
    response = api.get("/api/datasets/bobs/")
    assert response.status_code == 404
    assert response.json() == {"detail": "no dataset 'bobs'"}

    staff = client_for(user_factory("root", is_staff=True))
    assert [d["name"] for d in staff.get("/api/datasets/").json()["results"]] == ["bobs"]
    assert staff.get("/api/datasets/bobs/").json()["owner"] == "bob"
    assert staff.get("/api/datasets/bobs/?owner=alice").status_code == 404


def test_a_dataset_without_a_timestamp_column_spans_its_import_day(api, start_import):
    job = completed(start_import, csv_bytes([["a"], ["1"], ["2"]]), dataset="plain/form")
    body = api.get("/api/datasets/plain/form/").json()
    day = job.created_at.strftime("%Y-%m-%d")
    assert (body["rows"], body["first_day"], body["last_day"]) == (2, day, day)


# The same file twice.


def test_the_same_bytes_again_are_409_naming_the_job_unless_forced(api):
    first = upload_file(api, JUNE).json()["task_id"]

    again = upload_file(api, JUNE, name="renamed.csv")

    assert again.status_code == 409
    assert again.json() == {
        "detail": f"these bytes are being imported into dataset 'responses' already, by task "
        f"{first} (queued); to import them a second time, upload again with force",
        "task_id": first,
        "status": "queued",
    }
    run_job(first, worker="w")
    completed_twin = upload_file(api, JUNE).json()
    assert completed_twin["task_id"] == first and completed_twin["status"] == "completed"
    assert "were imported into dataset 'responses' already" in completed_twin["detail"]

    forced = upload_file(api, JUNE, force="true")
    assert forced.status_code == 202 and forced.json()["task_id"] != first
    assert Job.objects.filter(kind="import").count() == 2


def test_the_same_bytes_into_another_dataset_or_after_a_rollback_are_imported(api):
    first = upload_file(api, JUNE).json()["task_id"]
    assert upload_file(api, JUNE, dataset="copy").status_code == 202
    assert api.post(f"/api/tasks/{first}/terminate/").json()["status"] == "terminated"
    assert upload_file(api, JUNE).status_code == 202
    other_bytes = JUNE.replace(b"\r\n", b"\n")  # the same rows, other bytes
    assert upload_file(api, other_bytes).status_code == 202


def test_another_users_identical_file_is_no_duplicate(api, other_user):
    assert upload_file(api, JUNE).status_code == 202
    assert upload_file(client_for(other_user), JUNE).status_code == 202
