"""What the job JSON says about a job's state: no live rate when paused and when it will be
terminated, rolled-back rows as such, why a queued job waits, a completed job's summary,
and the rejected rows as pages of JSON."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from collect.jobs import services
from collect.jobs.runner import run_job
from collect.jobs.states import Kind, Status
from tests.conftest import client_for, csv_bytes, upload_file
from tests.factories import job_factory

pytestmark = pytest.mark.django_db


def job_json(api, job) -> dict:
    response = api.get(f"/api/tasks/{job.pk}/")
    assert response.status_code == 200
    return response.json()


@override_settings(COLLECT_PAUSE_TIMEOUT=300)
def test_a_paused_job_shows_no_rate_and_when_it_will_be_terminated(api, user):
    paused_at = timezone.now() - timedelta(seconds=60)
    job = job_factory(
        user, status=Status.PAUSED, paused_at=paused_at, rows_done=1000, run_seconds=2.0
    )
    body = job_json(api, job)
    assert body["progress"]["rows_per_s"] is None and body["progress"]["eta_s"] is None
    assert body["progress"]["rows_done"] == 1000
    expected = (paused_at + timedelta(seconds=300)).isoformat().replace("+00:00", "Z")
    assert body["pause_expires_at"] == expected
    assert body["queued_reason"] is None and body["summary"] is None


def test_a_running_job_has_a_rate_and_no_pause_expiry(api, user):
    job = job_factory(user, status=Status.RUNNING, rows_done=1000, run_seconds=2.0)
    body = job_json(api, job)
    assert body["progress"]["rows_per_s"] == 500.0
    assert body["pause_expires_at"] is None and body["rows_rolled_back"] is None


@pytest.mark.parametrize("status", [Status.TERMINATED, Status.FAILED])
def test_a_rolled_back_job_holds_no_rows_and_says_how_many_went(api, user, status):
    job = job_factory(user, status=status, rows_done=863_001, rows_rejected=2)
    body = job_json(api, job)
    assert body["progress"]["rows_done"] == 0
    assert body["rows_rolled_back"] == 863_001
    assert body["progress"]["rows_rejected"] == 2
    assert body["summary"] is None


@override_settings(COLLECT_BATCH_ROWS=100)
def test_a_terminated_import_reports_the_rows_it_wrote_as_rolled_back(api):
    rows = [[str(n), "2024-01-01T12:00:00Z", f'note, {n}\n"quoted"'] for n in range(1000)]
    data = csv_bytes([["id", "submitted_at", "note"], *rows])
    task_id = upload_file(api, data).json()["task_id"]
    run_job(task_id, worker="w", after_batch=lambda job: services.job_pause(job_id=job.pk))
    paused = api.get(f"/api/tasks/{task_id}/").json()
    written = paused["progress"]["rows_done"]
    assert paused["status"] == "paused" and 0 < written < 1000
    body = api.post(f"/api/tasks/{task_id}/terminate/").json()
    assert body["status"] == "terminated"
    assert (body["progress"]["rows_done"], body["rows_rolled_back"]) == (0, written)


@override_settings(COLLECT_DISPATCH="inprocess", COLLECT_WORKERS=2)
def test_a_queued_job_says_why_it_waits(api, user, other_user):
    first = job_factory(user)
    assert job_json(api, first)["queued_reason"] == (
        "waiting for a free worker (0 of 2 busy); it is next in line"
    )
    job_factory(other_user, status=Status.RUNNING)
    job_factory(other_user, status=Status.RUNNING)
    second = job_factory(user)
    assert job_json(api, second)["queued_reason"] == (
        "all 2 workers are busy; 1 jobs ahead of it in line"
    )
    retry_at = timezone.now() + timedelta(minutes=5)
    waiting = job_factory(user, run_after=retry_at, last_error="the database went away")
    assert job_json(api, waiting)["queued_reason"] == (
        f"waiting until {retry_at:%H:%M:%S} UTC to try again after: the database went away"
    )


@override_settings(COLLECT_DISPATCH="celery")
def test_a_queued_job_of_the_distributed_deployment_says_how_many_run(api, user):
    job_factory(user, status=Status.RUNNING)
    job = job_factory(user)
    assert job_json(api, job)["queued_reason"] == (
        "waiting for a worker (1 jobs running); it is next in line"
    )


def test_a_completed_import_has_a_summary(api):
    data = b"id,submitted_at\n1,2024-01-01\n2\n3,2024-01-03\n"
    task_id = upload_file(api, data, on_error="skip").json()["task_id"]
    job = run_job(task_id, worker="w")
    body = api.get(f"/api/tasks/{task_id}/").json()
    assert body["summary"] == {
        "rows_read": 3,
        "rows_imported": 2,
        "rows_rejected": 1,
        "bytes": len(data),
        "seconds": round(job.run_seconds, 1),
    }


def test_a_completed_export_has_a_summary(api, user):
    job = job_factory(
        user, Kind.EXPORT, Status.COMPLETED, rows_done=7, bytes_done=321, run_seconds=1.26
    )
    assert job_json(api, job)["summary"] == {"rows_exported": 7, "bytes": 321, "seconds": 1.3}


def test_rejected_rows_as_json_pages_of_100(api, other_user):
    lines = ["id,submitted_at"] + [f"{n},not-a-date-{n}" for n in range(150)] + ["150,2024-01-01"]
    data = ("\n".join(lines) + "\n").encode()
    task_id = upload_file(api, data, on_error="skip").json()["task_id"]
    run_job(task_id, worker="w")

    first = api.get(f"/api/tasks/{task_id}/rejected-rows/").json()
    assert first["count"] == 150 and first["previous"] is None
    assert first["next"].endswith(f"/api/tasks/{task_id}/rejected-rows/?page=2")
    assert len(first["results"]) == 100
    assert first["results"][0] == {
        "line": 2,
        "reason": "column 'submitted_at' is not an ISO 8601 date-time: 'not-a-date-0'",
        "content": "0,not-a-date-0",
    }
    second = api.get(first["next"]).json()
    assert [row["line"] for row in second["results"]] == list(range(102, 152))
    assert second["next"] is None

    assert client_for(other_user).get(f"/api/tasks/{task_id}/rejected-rows/").status_code == 404
