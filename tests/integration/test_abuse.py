"""What a hostile or careless client sends, in-process on the suite's database: odd headers,
characters no database stores, timestamps one store cannot hold, job floods, reject floods,
password guessing, formula cells. Each answers a 4xx in the one JSON shape, or is refused
with its reason, never a 500."""

import base64
import csv
import io
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from collect.jobs import selectors, services
from collect.jobs.models import Job
from collect.jobs.runner import run_job
from collect.jobs.states import Kind, Status
from collect.uploads.models import Upload
from tests.conftest import TUS, client_for, csv_bytes, upload_file
from tests.conftest import TUS_CHUNK as CHUNK
from tests.factories import dataset_factory, job_factory, user_factory

pytestmark = pytest.mark.django_db
WORKER = "test-worker"
DATA = csv_bytes([["id", "submitted_at"], ["1", "2024-01-01"], ["2", "2024-01-02"]])


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def upload(api, content: bytes = DATA, **fields):
    return upload_file(api, content, **fields)


def assert_refused(response, status: int = 400, *, saying: str = "") -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert saying in body["detail"], body
    return body


# Headers and values.


@pytest.mark.parametrize(
    ("headers", "saying"),
    [
        ({"HTTP_UPLOAD_LENGTH": "²"}, "Upload-Length must be a non-negative integer"),
        ({"HTTP_UPLOAD_LENGTH": "1" * 40}, "Upload-Length must be a non-negative integer"),
        ({"HTTP_UPLOAD_LENGTH": "10", "HTTP_UPLOAD_METADATA": "filename é"}, "not base64"),
        (
            {"HTTP_UPLOAD_LENGTH": "10", "HTTP_UPLOAD_METADATA": "dataset " + b64("a\x00b")},
            "holds a NUL",
        ),
        (
            {"HTTP_UPLOAD_LENGTH": "10", "HTTP_UPLOAD_METADATA": f"dataset {b64('x' * 101)}"},
            "at most 100 characters",
        ),
        (
            {"HTTP_UPLOAD_LENGTH": "10", "HTTP_UPLOAD_METADATA": f"max_rejects {b64('many')}"},
            "max_rejects must be a non-negative integer",
        ),
    ],
)
def test_odd_tus_creation_headers_are_400(api, headers, saying):
    assert_refused(api.post("/api/uploads/", **TUS, **headers), saying=saying)
    assert Upload.objects.count() == 0


def created(api) -> str:
    response = api.post("/api/uploads/", HTTP_UPLOAD_LENGTH=str(len(DATA)), **TUS)
    assert response.status_code == 201
    return response["Location"].removeprefix("http://testserver")


@pytest.mark.parametrize(
    ("headers", "saying"),
    [
        ({"HTTP_UPLOAD_OFFSET": "¹"}, "Upload-Offset must be a non-negative integer"),
        ({"HTTP_UPLOAD_OFFSET": "0", "HTTP_UPLOAD_CHECKSUM": "sha1 é"}, "not base64"),
    ],
)
def test_odd_tus_chunk_headers_are_400(api, headers, saying):
    path = created(api)
    response = api.generic("PATCH", path, DATA, content_type=CHUNK, **TUS, **headers)
    assert_refused(response, saying=saying)
    assert Upload.objects.get().offset == 0


def test_a_first_chunk_of_the_wrong_type_leaves_no_upload_behind(api):
    response = api.generic(
        "POST",
        "/api/uploads/",
        DATA,
        content_type="text/csv",
        HTTP_UPLOAD_LENGTH=str(len(DATA)),
        **TUS,
    )
    assert response.status_code == 415
    assert Upload.objects.count() == 0


@pytest.mark.parametrize("dataset", ["a\x00b", "x" * 101, "line\nbreak"])
def test_an_export_of_an_unstorable_dataset_name_is_400(api, dataset):
    response = api.get(
        "/api/export/", {"from_date": "2024-01-01", "to_date": "2024-01-02", "dataset": dataset}
    )
    assert_refused(response, saying="dataset name")


def test_a_timestamp_postgresql_cannot_hold_is_rejected_at_import_on_every_store(api):
    content = csv_bytes(
        [
            ["id", "submitted_at"],
            ["1", "2025-06-01T10:00:00+15:59"],
            ["2", "2025-06-01T10:00:00+20:00"],
            ["3", "2025-06-01"],
        ]
    )
    job = run_job(upload(api, content, on_error="skip").json()["task_id"], worker=WORKER)
    assert (job.status, job.rows_done, job.rows_rejected) == (Status.COMPLETED, 2, 1)
    [(line, reason)] = job.rejected_rows.values_list("line", "reason")
    assert line == 3 and "is not an ISO 8601 date-time" in reason


@pytest.mark.parametrize(
    ("first", "last"), [("0001-01-01", "9999-12-31"), ("2025-06-01", "9999-12-31T23:59:59")]
)
def test_any_range_a_user_can_type_exports(api, first, last):
    content = csv_bytes([["id", "submitted_at"], ["1", "2025-06-01T10:00:00-15:00"]])
    run_job(upload(api, content).json()["task_id"], worker=WORKER)
    reply = api.post("/api/exports/", {"from": first, "to": last}, format="json")
    job = run_job(reply.json()["task_id"], worker=WORKER)
    assert (job.status, job.rows_done) == (Status.COMPLETED, 1), job.error


# Formula cells.


def downloaded(api, path: str) -> list[list[str]]:
    response = api.get(path)
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode(), newline="")))


def test_the_exports_header_and_the_rejected_rows_are_neutralised(api):
    content = csv_bytes(
        [
            ['=HYPERLINK("http://evil.example")', "submitted_at"],
            ["1", "2024-01-01"],
            ["@SUM(1)", "bad", "extra"],
            ["=2", "never"],
        ]
    )
    imported = run_job(upload(api, content, on_error="skip").json()["task_id"], worker=WORKER)
    rejects = downloaded(api, f"/api/tasks/{imported.pk}/errors/")
    assert rejects[0] == ["line", "reason", "content"]
    assert [row[2] for row in rejects[1:]] == ["'@SUM(1),bad,extra", "'=2,never"]

    reply = api.post("/api/exports/", {"from": "2024-01-01", "to": "2024-01-01"}, format="json")
    export = run_job(reply.json()["task_id"], worker=WORKER)
    rows = downloaded(api, f"/api/tasks/{export.pk}/download/")
    assert rows == [['\'=HYPERLINK("http://evil.example")', "submitted_at"], ["1", "2024-01-01"]]
    raw = api.post(
        "/api/exports/", {"from": "2024-01-01", "to": "2024-01-01", "raw": True}, format="json"
    )
    export = run_job(raw.json()["task_id"], worker=WORKER)
    assert downloaded(api, f"/api/tasks/{export.pk}/download/")[0][0].startswith("=HYPERLINK")


# Rejected rows are a budget.


@override_settings(COLLECT_MAX_STORED_REJECTS=5)
def test_rejected_rows_past_the_budget_are_counted_not_kept(api):
    rows = [["id", "submitted_at"]] + [[str(n), "not a date"] for n in range(40)]
    rows.append(["41", "2024-01-01"])
    job = run_job(upload(api, csv_bytes(rows), on_error="skip").json()["task_id"], worker=WORKER)
    assert (job.status, job.rows_done, job.rows_rejected) == (Status.COMPLETED, 1, 40)
    assert job.rejected_rows.count() == 5
    listed = downloaded(api, f"/api/tasks/{job.pk}/errors/")
    assert [row[0] for row in listed[1:6]] == ["2", "3", "4", "5", "6"]
    assert listed[6] == [
        "",
        "35 more rejected rows were counted but not kept (at most 5 are kept)",
        "",
    ]


def test_max_rejects_fails_the_import_past_it(api):
    rows = [["id", "submitted_at"]] + [[str(n), "never"] for n in range(20)]
    reply = upload(api, csv_bytes(rows), on_error="skip", max_rejects="10")
    job = run_job(reply.json()["task_id"], worker=WORKER)
    assert (job.status, job.error) == (Status.FAILED, "more than 10 rejected rows")


def test_max_rejects_comes_through_tus_metadata(api):
    rows = [["id", "submitted_at"]] + [[str(n), "never"] for n in range(3)]
    content = csv_bytes(rows)
    metadata = f"on_error {b64('skip')},max_rejects {b64('2')}"
    response = api.generic(
        "POST",
        "/api/uploads/",
        content,
        content_type=CHUNK,
        HTTP_UPLOAD_LENGTH=str(len(content)),
        HTTP_UPLOAD_METADATA=metadata,
        **TUS,
    )
    assert response.status_code == 201
    job = run_job(response["Collect-Task-Id"], worker=WORKER)
    assert (job.status, job.error) == (Status.FAILED, "more than 2 rejected rows")


# Floods of jobs.


@override_settings(COLLECT_MAX_ACTIVE_JOBS=3)
def test_a_user_past_the_active_job_limit_gets_429_and_others_do_not(api, user, other_user):
    # Each active state holds a place; a finished job holds none.
    dataset_factory(user, "d0")
    paused = job_factory(user, status=Status.PAUSED)
    for status in (Status.QUEUED, Status.RUNNING, Status.COMPLETED, Status.FAILED):
        job_factory(user, status=status)
    full = (
        "you have 3 jobs queued, running or paused, the most allowed: wait for one to end, "
        "or terminate one"
    )
    body = assert_refused(upload(api, DATA, dataset="d9"), 429, saying=full)
    assert body == {"detail": full, "limit": 3}
    export = api.post(
        "/api/exports/", {"dataset": "d0", "from": "2024-01-01", "to": "2024-01-02"}, format="json"
    )
    assert assert_refused(export, 429) == body
    tus = api.post("/api/uploads/", HTTP_UPLOAD_LENGTH="10", **TUS)
    assert assert_refused(tus, 429) == body
    assert Job.objects.filter(owner=user).count() == 5
    assert Upload.objects.count() == 0
    assert upload(client_for(other_user), DATA).status_code == 202

    services.job_terminate(job_id=paused.pk)  # a place is free again
    assert upload(api, DATA, dataset="d9").status_code == 202


def test_workers_take_the_jobs_of_the_least_busy_user_first(user, other_user):
    start = timezone.now() - timedelta(hours=1)
    flood = [job_factory(user, created_at=start + timedelta(minutes=n)).pk for n in range(4)]
    services.job_claim(job_id=flood[0], worker="busy")  # alice has a job running
    late = job_factory(other_user, created_at=start + timedelta(minutes=10)).pk
    job_factory(other_user, Kind.EXPORT, Status.PAUSED)  # not queued: not a candidate

    assert selectors.jobs_fairest_first(limit=10) == [late, *flood[1:]]  # bob's job first,
    assert selectors.jobs_fairest_first(limit=2) == [late, flood[1]]  # then alice's, oldest first


# Guessing passwords.


@pytest.fixture
def page_user(db):
    return user_factory("carol", password="the-right-one")


def sign_in(client: Client, password: str, address: str = "10.0.0.1"):
    return client.post(
        "/login/",
        {"username": "carol", "password": password},
        REMOTE_ADDR=address,
        HTTP_ACCEPT="text/html",
    )


@override_settings(AXES_FAILURE_LIMIT=3)
def test_wrong_passwords_are_throttled_for_that_account_and_client_only(page_user):
    client = Client()
    for _ in range(2):
        assert sign_in(client, "guess").status_code == 200  # the form again, with its error
    locked = sign_in(client, "guess")
    assert locked.status_code == 429
    assert b"Too many wrong passwords for this account from here" in locked.content
    assert sign_in(client, "the-right-one").status_code == 429  # even the right one, for now

    elsewhere = sign_in(Client(), "the-right-one", address="10.0.0.2")
    assert elsewhere.status_code == 302  # the account itself stays open

    api_style = Client().post(
        "/login/",
        {"username": "carol", "password": "x"},
        REMOTE_ADDR="10.0.0.1",
        HTTP_ACCEPT="application/json",
    )
    assert api_style.status_code == 429 and "Too many" in api_style.json()["detail"]


@override_settings(AXES_FAILURE_LIMIT=2)
def test_the_throttle_ends_by_itself(page_user):
    from axes.models import AccessAttempt

    client = Client()
    sign_in(client, "guess")
    assert sign_in(client, "guess").status_code == 429
    AccessAttempt.objects.update(attempt_time="2000-01-01T00:00:00Z")  # the cool-off passed
    assert sign_in(client, "the-right-one").status_code == 302


# The brief's GET export with a session cookie.


def test_a_cross_site_get_export_with_only_a_session_cookie_is_refused(page_user):
    client = Client()
    client.post("/login/", {"username": "carol", "password": "the-right-one"})
    dataset_factory(page_user)
    query = "/api/export/?from_date=2024-01-01&to_date=2024-01-02"
    for refused in (
        client.get(query, HTTP_SEC_FETCH_SITE="cross-site"),
        client.get(query, HTTP_REFERER="https://evil.example/page"),
    ):
        assert assert_refused(refused, 403) == {
            "detail": "with a session cookie, start exports from this site's page or POST "
            "/api/exports/; scripts authenticate with a token"
        }
    assert Job.objects.filter(kind="export").count() == 0
    assert client.get(query, HTTP_SEC_FETCH_SITE="same-origin").status_code == 202
    assert client_for(page_user).get(query).status_code == 202  # scripts are not concerned
    assert Job.objects.filter(kind="export").count() == 2


# Concatenation.


def partial_upload(api, content: bytes) -> str:
    response = api.generic(
        "POST",
        "/api/uploads/",
        content,
        content_type=CHUNK,
        HTTP_UPLOAD_LENGTH=str(len(content)),
        HTTP_UPLOAD_CONCAT="partial",
        **TUS,
    )
    assert response.status_code == 201
    return response["Location"]


def final_upload(api, *parts: str):
    return api.post("/api/uploads/", HTTP_UPLOAD_CONCAT="final;" + " ".join(parts), **TUS)


def test_partial_uploads_are_joined_once_and_listed_once(api):
    head, tail = partial_upload(api, DATA[:20]), partial_upload(api, DATA[20:])
    assert_refused(final_upload(api, head, head), saying="more than once")
    assert final_upload(api, head, tail).status_code == 201
    assert_refused(final_upload(api, head, tail), 409, saying="already part of a final upload")
    assert Job.objects.count() == 1
