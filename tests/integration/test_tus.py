"""The tus 1.0.0 protocol at /api/uploads/, header by header and status code by status code
(https://tus.io/protocols/resumable-upload). The real clients are in tests/e2e/test_tus.py."""

import base64
import gzip
import hashlib
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from collect.files import upload_path
from collect.jobs.models import Job
from collect.jobs.runner import run_job
from collect.uploads.models import Upload
from collect.uploads.services import upload_sweep
from tests.conftest import TUS, client_for, csv_bytes, upload_file
from tests.conftest import TUS_CHUNK as CHUNK
from tests.conftest import tus_metadata as metadata
from tests.factories import dataset_factory, upload_factory

pytestmark = pytest.mark.django_db
DATA = csv_bytes(
    [["id", "submitted_at", "answer"]] + [[str(i), "2024-05-01", "x"] for i in range(50)]
)


def path_of(upload: Upload) -> str:
    return f"/api/uploads/{upload.pk}"


def create(api, length: int | None = len(DATA), **headers) -> str:
    """A new upload's path."""
    if length is not None:
        headers.setdefault("HTTP_UPLOAD_LENGTH", str(length))
    response = api.post("/api/uploads/", **TUS, **headers)
    assert response.status_code == 201, response.content
    return response["Location"].removeprefix("http://testserver")


def patch(api, path: str, body: bytes, offset: int, **headers):
    headers = {"HTTP_UPLOAD_OFFSET": str(offset), **TUS, **headers}
    return api.generic("PATCH", path, body, content_type=CHUNK, **headers)


def head(api, path: str):
    return api.head(path, **TUS)


def checksum(algorithm: str, data: bytes) -> str:
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def test_options_announces_version_extensions_size_and_checksums(client, db):
    response = client.options("/api/uploads/")  # no Tus-Resumable, no credentials: allowed
    assert response.status_code == 204
    assert response["Tus-Version"] == "1.0.0"
    assert set(response["Tus-Extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "creation-defer-length",
        "termination",
        "checksum",
        "expiration",
        "concatenation",
    }
    assert int(response["Tus-Max-Size"]) > 0
    assert set(response["Tus-Checksum-Algorithm"].split(",")) == {"sha1", "md5", "sha256"}


def test_an_upload_in_two_chunks_starts_its_import(api):
    path = create(api, HTTP_UPLOAD_METADATA=metadata(filename="../../etc/form.csv", dataset="f"))
    assert path.startswith("/api/uploads/")
    first = patch(api, path, DATA[:100], 0)
    assert first.status_code == 204
    assert first["Upload-Offset"] == "100"
    assert first["Tus-Resumable"] == "1.0.0"
    assert "Upload-Expires" in first
    assert "Collect-Task-Id" not in first
    probe = head(api, path)
    assert (probe.status_code, probe["Upload-Offset"], probe["Upload-Length"]) == (
        200,
        "100",
        str(len(DATA)),
    )
    assert probe["Cache-Control"] == "no-store"
    assert probe["Upload-Metadata"] == metadata(filename="../../etc/form.csv", dataset="f")
    last = patch(api, path, DATA[100:], 100)
    assert last.status_code == 204
    assert last["Upload-Offset"] == str(len(DATA))
    job = Job.objects.get(pk=last["Collect-Task-Id"])
    assert job.dataset.name == "f"
    assert job.params["filename"] == "form.csv"  # a name to show, never a path
    assert job.params["upload_id"] == path.rstrip("/").rsplit("/", 1)[1]
    assert head(api, path)["Collect-Task-Id"] == str(job.pk)
    listed = api.get("/api/tasks/").json()["results"]
    assert [(t["task_id"], t["upload_id"]) for t in listed] == [
        (str(job.pk), job.params["upload_id"])
    ]
    run_job(job.pk, worker="w")
    job.refresh_from_db()
    assert (job.status, job.rows_done) == ("completed", 50)


def test_the_creation_url_works_without_its_trailing_slash(api):
    response = api.post("/api/uploads", HTTP_UPLOAD_LENGTH="10", **TUS)
    assert response.status_code == 201
    assert response["Location"].startswith("http://testserver/api/uploads/")


def test_creation_with_upload_takes_the_first_chunk(api):
    response = api.generic(
        "POST",
        "/api/uploads/",
        DATA[:64],
        content_type=CHUNK,
        HTTP_UPLOAD_LENGTH=str(len(DATA)),
        **TUS,
    )
    assert response.status_code == 201
    assert response["Upload-Offset"] == "64"
    path = response["Location"].removeprefix("http://testserver")
    assert patch(api, path, DATA[64:], 64).status_code == 204


def test_a_deferred_length_is_declared_by_a_later_patch(api):
    path = create(api, length=None, HTTP_UPLOAD_DEFER_LENGTH="1")
    probe = head(api, path)
    assert probe["Upload-Defer-Length"] == "1"
    assert "Upload-Length" not in probe
    assert patch(api, path, DATA[:10], 0).status_code == 204
    done = patch(api, path, DATA[10:], 10, HTTP_UPLOAD_LENGTH=str(len(DATA)))
    assert done.status_code == 204
    assert done["Upload-Length"] == str(len(DATA))
    assert "Collect-Task-Id" in done


@pytest.mark.parametrize("algorithm", ["sha1", "md5", "sha256"])
def test_a_chunk_with_a_matching_checksum_is_kept(api, algorithm):
    path = create(api)
    response = patch(api, path, DATA[:30], 0, HTTP_UPLOAD_CHECKSUM=checksum(algorithm, DATA[:30]))
    assert (response.status_code, response["Upload-Offset"]) == (204, "30")


def test_a_chunk_with_a_wrong_checksum_is_460_and_discarded(api, user):
    upload = upload_factory(user, DATA[:30], length=len(DATA))
    path = path_of(upload)
    response = patch(api, path, DATA[30:60], 30, HTTP_UPLOAD_CHECKSUM=checksum("sha1", b"other"))
    assert response.status_code == 460
    assert response.json() == {"detail": "the chunk's sha1 checksum does not match"}
    assert head(api, path)["Upload-Offset"] == "30"
    assert Upload.objects.get().offset == 30
    assert upload_path(upload.file_name).read_bytes() == DATA[:30]


def test_an_unknown_checksum_algorithm_is_400(api):
    path = create(api)
    response = patch(api, path, DATA[:30], 0, HTTP_UPLOAD_CHECKSUM="crc32 AAAAAA==")
    assert response.status_code == 400
    assert head(api, path)["Upload-Offset"] == "0"


def test_a_wrong_offset_is_409_and_writes_nothing(api, user):
    upload = upload_factory(user, DATA[:30], length=len(DATA))
    response = patch(api, path_of(upload), DATA[40:60], 40)
    assert response.status_code == 409
    assert response.json()["detail"] == "Upload-Offset 40 does not match the upload's offset 30"
    assert head(api, path_of(upload))["Upload-Offset"] == "30"
    assert upload_path(upload.file_name).read_bytes() == DATA[:30]


def test_a_patch_of_another_type_is_415(api):
    path = create(api)
    response = api.generic(
        "PATCH", path, DATA[:30], content_type="text/csv", HTTP_UPLOAD_OFFSET="0", **TUS
    )
    assert response.status_code == 415
    assert head(api, path)["Upload-Offset"] == "0"


@pytest.mark.parametrize("method", ["post", "head", "patch", "delete"])
def test_a_request_without_tus_resumable_is_412(api, method):
    path = create(api)
    headers = {"HTTP_UPLOAD_LENGTH": "10"} if method == "post" else {"HTTP_UPLOAD_OFFSET": "0"}
    target = "/api/uploads/" if method == "post" else path
    response = api.generic(method.upper(), target, b"", content_type=CHUNK, **headers)
    assert response.status_code == 412
    assert response["Tus-Version"] == "1.0.0"
    wrong = api.generic(
        method.upper(), target, b"", content_type=CHUNK, HTTP_TUS_RESUMABLE="0.2.2", **headers
    )
    assert wrong.status_code == 412


@override_settings(COLLECT_MAX_UPLOAD_BYTES=1000)
def test_sizes_past_the_maximum_or_the_length_are_413(api):
    response = api.post("/api/uploads/", HTTP_UPLOAD_LENGTH="1001", **TUS)
    assert response.status_code == 413
    assert api.options("/api/uploads/")["Tus-Max-Size"] == "1000"
    path = create(api, length=100)
    assert patch(api, path, b"x" * 101, 0).status_code == 413
    assert head(api, path)["Upload-Offset"] == "0"
    deferred = create(api, length=None, HTTP_UPLOAD_DEFER_LENGTH="1")
    assert patch(api, deferred, b"", 0, HTTP_UPLOAD_LENGTH="1001").status_code == 413


@pytest.mark.parametrize(
    "headers",
    [
        {},  # neither length nor deferral
        {"HTTP_UPLOAD_LENGTH": "10", "HTTP_UPLOAD_DEFER_LENGTH": "1"},
        {"HTTP_UPLOAD_LENGTH": "-1"},
        {"HTTP_UPLOAD_DEFER_LENGTH": "yes"},
        {"HTTP_UPLOAD_LENGTH": "10", "HTTP_UPLOAD_METADATA": "dataset !!notbase64"},
        {"HTTP_UPLOAD_LENGTH": "10", "HTTP_UPLOAD_METADATA": metadata(on_error="later")},
        {"HTTP_UPLOAD_LENGTH": "10", "HTTP_UPLOAD_CONCAT": "whole"},
        {"HTTP_UPLOAD_LENGTH": "10", "HTTP_UPLOAD_METADATA": f"{metadata(dataset='a')},dataset "},
    ],
)
def test_a_malformed_creation_is_400(api, headers):
    response = api.post("/api/uploads/", **TUS, **headers)
    assert response.status_code == 400
    assert response.json()["detail"]
    assert not Upload.objects.exists()


def test_termination_frees_the_bytes_and_the_upload_is_gone(api, user):
    upload = upload_factory(user, DATA[:30], length=len(DATA))
    path = path_of(upload)
    file = upload_path(upload.file_name)
    assert file.exists()
    response = api.delete(path, **TUS)
    assert response.status_code == 204
    assert response["Tus-Resumable"] == "1.0.0"
    assert not file.exists()
    assert Upload.objects.get().state == Upload.State.TERMINATED
    assert head(api, path).status_code == 410
    assert patch(api, path, DATA[30:], 30).status_code == 410


def test_only_the_owner_sees_an_upload(api, user, other_user):
    upload = upload_factory(user, DATA[:30], length=len(DATA))
    path = path_of(upload)
    stranger = client_for(other_user)
    assert head(stranger, path).status_code == 404
    assert patch(stranger, path, DATA[:10], 0).status_code == 404
    assert stranger.delete(path, **TUS).status_code == 404
    assert head(api, path)["Upload-Offset"] == "30"
    assert upload_path(upload.file_name).read_bytes() == DATA[:30]
    assert head(api, "/api/uploads/9b2d6f0e-4f59-4c0e-bd3c-2d1b2a9f7a11").status_code == 404
    assert head(api, "/api/uploads/not-a-uuid").status_code == 404


def test_requests_without_credentials_are_401(user):
    upload = upload_factory(user, DATA[:30], length=len(DATA))
    anonymous = APIClient()
    for method, path, headers in [
        ("POST", "/api/uploads/", {"HTTP_UPLOAD_LENGTH": "10"}),
        ("HEAD", path_of(upload), {}),
        ("PATCH", path_of(upload), {"HTTP_UPLOAD_OFFSET": "30"}),
        ("DELETE", path_of(upload), {}),
    ]:
        response = anonymous.generic(method, path, DATA[30:], content_type=CHUNK, **TUS, **headers)
        assert (method, response.status_code) == (method, 401)
        assert response["WWW-Authenticate"] == "Token"
    assert Upload.objects.get().offset == 30
    assert Upload.objects.count() == 1


def test_unfinished_uploads_expire_and_are_cleaned_up(api, user):
    upload = upload_factory(user, DATA[:30], length=len(DATA))
    path = path_of(upload)
    expires = head(api, path)["Upload-Expires"]
    assert expires.endswith("GMT")  # an HTTP date
    assert upload_sweep() == 0
    assert upload_sweep(now=timezone.now() + timedelta(days=2)) == 1
    assert Upload.objects.get().state == Upload.State.EXPIRED
    assert not upload_path(upload.file_name).exists()
    assert head(api, path).status_code == 410


def test_concatenation_joins_partial_uploads_into_one_import(api):
    cut = DATA.index(b"\n", 40) + 1
    first = create(api, length=cut, HTTP_UPLOAD_CONCAT="partial")
    second = create(api, length=len(DATA) - cut, HTTP_UPLOAD_CONCAT="partial")
    # Pieces may arrive in any order and their order in the final upload is what counts.
    assert patch(api, second, DATA[cut:], 0).status_code == 204
    assert patch(api, first, DATA[:cut], 0).status_code == 204
    assert head(api, first)["Upload-Concat"] == "partial"
    assert not Job.objects.exists()  # a partial upload starts no import
    response = api.post(
        "/api/uploads/",
        HTTP_UPLOAD_CONCAT=f"final;{first} http://testserver{second}",
        HTTP_UPLOAD_METADATA=metadata(dataset="joined"),
        **TUS,
    )
    assert response.status_code == 201
    final = response["Location"].removeprefix("http://testserver")
    probe = head(api, final)
    assert probe["Upload-Length"] == probe["Upload-Offset"] == str(len(DATA))
    assert probe["Upload-Concat"] == f"final;http://testserver{first} http://testserver{second}"
    assert patch(api, final, b"more", len(DATA)).status_code == 403
    # The pieces' bytes now live in the final upload only.
    assert head(api, first).status_code == head(api, second).status_code == 410
    parts = Upload.objects.filter(concat=Upload.Concat.PARTIAL)
    assert not any(upload_path(part.file_name).exists() for part in parts)
    job = Job.objects.get(pk=response["Collect-Task-Id"])
    run_job(job.pk, worker="w")
    job.refresh_from_db()
    assert (job.status, job.rows_done, job.dataset.name) == ("completed", 50, "joined")


def test_concatenating_an_unfinished_partial_upload_is_400(api):
    part = create(api, length=len(DATA), HTTP_UPLOAD_CONCAT="partial")
    patch(api, part, DATA[:10], 0)
    response = api.post("/api/uploads/", HTTP_UPLOAD_CONCAT=f"final;{part}", **TUS)
    assert response.status_code == 400
    part_id = part.rstrip("/").rsplit("/", 1)[1]
    assert response.json() == {"detail": f"partial upload {part_id} is not complete"}
    assert Upload.objects.count() == 1


def test_method_override_lets_post_act_as_patch_and_delete(api):
    path = create(api)
    response = api.generic(
        "POST",
        path,
        DATA[:20],
        content_type=CHUNK,
        HTTP_X_HTTP_METHOD_OVERRIDE="PATCH",
        HTTP_UPLOAD_OFFSET="0",
        **TUS,
    )
    assert (response.status_code, response["Upload-Offset"]) == (204, "20")
    assert api.post(path, HTTP_X_HTTP_METHOD_OVERRIDE="DELETE", **TUS).status_code == 204
    assert head(api, path).status_code == 410


def test_cors_lets_browsers_use_the_protocol(client, db):
    preflight = client.options(
        "/api/uploads/",
        HTTP_ORIGIN="https://forms.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="PATCH",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="tus-resumable,upload-offset,upload-checksum",
    )
    assert preflight.status_code == 200
    assert "PATCH" in preflight["Access-Control-Allow-Methods"]
    allowed = preflight["Access-Control-Allow-Headers"].lower()
    assert {"tus-resumable", "upload-offset", "upload-checksum", "upload-metadata"} <= set(
        allowed.replace(" ", "").split(",")
    )
    response = client.options("/api/uploads/", HTTP_ORIGIN="https://forms.example")
    exposed = {
        name.strip().lower() for name in response["Access-Control-Expose-Headers"].split(",")
    }
    assert {
        "location",
        "upload-offset",
        "upload-length",
        "upload-metadata",
        "upload-expires",
    } <= exposed
    assert {"tus-resumable", "tus-version", "tus-max-size", "tus-extension"} <= exposed


def test_a_gzip_upload_is_imported_decompressed(api):
    packed = gzip.compress(DATA)
    path = create(api, length=len(packed), HTTP_UPLOAD_METADATA=metadata(filename="f.csv.gz"))
    job = Job.objects.get(pk=patch(api, path, packed, 0)["Collect-Task-Id"])
    run_job(job.pk, worker="w")
    job.refresh_from_db()
    assert (job.status, job.rows_done, job.bytes_done) == ("completed", 50, len(packed))


def test_an_upload_whose_import_cannot_start_says_why(api):
    body = b"a,a\n1,2\n"
    path = create(api, length=len(body))
    response = patch(api, path, body, 0)
    assert response.status_code == 400
    assert "twice" in response.json()["detail"]
    probe = head(api, path)
    assert probe["Upload-Offset"] == str(len(body))
    assert "twice" in probe["Collect-Error"]
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("first_chunk", "complaint"),
    [
        (b"id,id\n1,2\n", "names column 'id' twice"),
        (gzip.compress(b"id,id\n1,2\n" * 1000)[:200], "names column 'id' twice"),  # cut gzip
        (b"when,x\n1,2\n", "timestamp_column 'submitted_at' is not in the file's header"),
        (b"submitted_at,other\n2024-01-01,2\n", "does not match the columns of dataset 'f'"),
    ],
)
def test_a_header_the_import_would_refuse_is_refused_at_the_first_chunk(
    api, user, first_chunk, complaint
):
    dataset_factory(user, "f", ["id", "submitted_at"])
    meta = metadata(dataset="f", timestamp_column="submitted_at")
    path = create(api, length=10**9, HTTP_UPLOAD_METADATA=meta)
    response = patch(api, path, first_chunk, 0)
    assert response.status_code == 400
    assert complaint in response.json()["detail"]
    assert complaint in head(api, path)["Collect-Error"]
    upload = Upload.objects.get()
    assert upload.state == Upload.State.FAILED
    assert not upload_path(upload.file_name).exists()  # 1 GB less to receive
    again = patch(api, path, b"more", len(first_chunk))
    assert again.status_code == 400
    assert complaint in again.json()["detail"]


def test_a_header_is_checked_once_it_has_arrived_whole(api):
    path = create(api)
    assert patch(api, path, DATA[:5], 0).status_code == 204  # "id,su": not a header yet
    assert not Upload.objects.get().header_checked
    assert patch(api, path, DATA[5:40], 5).status_code == 204
    assert Upload.objects.get().header_checked
    assert patch(api, path, DATA[40:], 40).status_code == 204


# The same file twice.


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_declared_fingerprint_of_bytes_imported_is_409_at_creation(api):
    path = create(api, HTTP_UPLOAD_METADATA=metadata(sha256=sha256_of(DATA)))
    task_id = patch(api, path, DATA, 0)["Collect-Task-Id"]
    uploads = Upload.objects.count()

    response = api.post(
        "/api/uploads/",
        HTTP_UPLOAD_LENGTH=str(len(DATA)),
        HTTP_UPLOAD_METADATA=metadata(sha256=sha256_of(DATA)),
        **TUS,
    )

    assert response.status_code == 409
    assert response.json()["task_id"] == task_id and response.json()["status"] == "queued"
    assert f"by task {task_id} (queued)" in response.json()["detail"]
    assert Upload.objects.count() == uploads  # nothing was created
    forced = metadata(sha256=sha256_of(DATA), force="true")
    assert create(api, HTTP_UPLOAD_METADATA=forced)


def test_without_a_fingerprint_the_same_bytes_are_409_when_the_upload_completes(api):
    first = upload_file_multipart(api, DATA)
    path = create(api)
    response = patch(api, path, DATA, 0)
    assert response.status_code == 409
    assert response.json()["task_id"] == first
    probe = head(api, path)
    assert probe["Collect-Error"].startswith("these bytes are being imported into dataset")
    assert Job.objects.count() == 1
    forced = create(api, HTTP_UPLOAD_METADATA=metadata(force="1"))
    assert patch(api, forced, DATA, 0).status_code == 204
    assert Job.objects.count() == 2


def test_a_concatenated_upload_of_the_same_bytes_is_409(api):
    first = upload_file_multipart(api, DATA)
    part = create(api, HTTP_UPLOAD_CONCAT="partial")
    assert patch(api, part, DATA, 0).status_code == 204
    response = api.post("/api/uploads/", HTTP_UPLOAD_CONCAT=f"final;{part}", **TUS)
    assert response.status_code == 409 and response.json()["task_id"] == first


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"sha256": "abc"}, "Upload-Metadata: sha256 must be 64 hexadecimal digits"),
        ({"force": "maybe"}, "Upload-Metadata: force must be true or false"),
    ],
)
def test_a_malformed_fingerprint_or_force_is_400(api, values, message):
    response = api.post(
        "/api/uploads/", HTTP_UPLOAD_LENGTH="10", HTTP_UPLOAD_METADATA=metadata(**values), **TUS
    )
    assert (response.status_code, response.json()) == (400, {"detail": message})


def upload_file_multipart(api, content: bytes) -> str:
    response = upload_file(api, content)
    assert response.status_code == 202
    return response.json()["task_id"]
