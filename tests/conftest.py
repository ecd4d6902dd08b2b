"""What every tier shares: the rules of the run, and the helpers and fixtures of the tests
that run in-process (tests/unit, tests/integration). Test modules import helpers from here
or from tests/factories.py, never from each other."""

import base64
import csv
import io
import json
import os
import queue
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from collect.datasets import DEFAULT_DATASET
from collect.datasets.stores import segment_table
from collect.datasets.stores.base import value_columns
from collect.imports.params import ImportParams
from collect.imports.services import import_start
from collect.jobs import dispatch
from collect.timestamps import parse_timestamp
from tests.factories import user_factory

# Tests of what only PostgreSQL has are not collected on SQLite (rather than skipped),
# wherever they are under tests/.
collect_ignore_glob = (
    []
    if os.environ.get("DATABASE_URL", "").startswith("postgres")
    else ["test_postgres_*.py", "*/test_postgres_*.py"]
)

# A skipped test hides missing behaviour: the suite's own run (tests/run.py) fails on any.
_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if _skipped and os.environ.get("COLLECT_FAIL_ON_SKIP") and exitstatus == 0:
        print(f"\n{len(_skipped)} test(s) skipped, which this run does not allow: {_skipped}")
        session.exitstatus = 1


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing():
    """PBKDF2 takes half a second a password, by design; the tests make and check dozens."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


# Users and their API clients.


@pytest.fixture
def user(db):
    return user_factory("alice", password="secret-alice")


@pytest.fixture
def other_user(db):
    return user_factory("bob", password="secret-bob")


def client_for(user) -> APIClient:
    """An API client that authenticates as `user` with its token."""
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api(user):
    return client_for(user)


# Files and uploads.


def csv_bytes(rows: list[list[str]], *, lineterminator: str = "\r\n") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=lineterminator).writerows(rows)
    return buffer.getvalue().encode("utf-8")


def upload_file(api, content: bytes, *, field: str = "file", name: str = "form.csv", **fields):
    """POST /api/upload-file/ of `content` as a multipart file, with extra form `fields`."""
    document = io.BytesIO(content)
    document.name = name
    return api.post("/api/upload-file/", {field: document, **fields}, format="multipart")


# The headers of a tus request, and the content type of its chunks.
TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}
TUS_CHUNK = "application/offset+octet-stream"


def tus_metadata(**values: str) -> str:
    """An Upload-Metadata header: each key with its value in base64."""
    return ",".join(f"{key} {base64.b64encode(v.encode()).decode()}" for key, v in values.items())


@pytest.fixture
def start_import(tmp_path, user):
    """Start an import of `content` (bytes) as the given user, as an upload would."""

    def start(content: bytes, *, owner=None, dataset=DEFAULT_DATASET, **options):
        source = tmp_path / f"upload-{len(list(tmp_path.iterdir()))}.csv"
        source.write_bytes(content)
        return import_start(
            owner=owner or user,
            source=Path(source),
            filename="upload.csv",
            dataset_name=dataset,
            **options,
        )

    return start


# What jobs wrote.


def segment_exists(job) -> bool:
    return segment_table(job.pk) in connection.introspection.table_names()


def segment_rows(job) -> list[tuple]:
    """The rows a job has written so far, in file order: (line, timestamp in µs, values...).
    `line` is the file's line on SQLite, the row's place in the heap on PostgreSQL."""
    if not segment_exists(job):
        return []
    params = ImportParams.from_job(job)
    names = ", ".join(value_columns(len(params.columns)))
    table = segment_table(job.pk)
    if connection.vendor == "postgresql":  # the order in which exports read them
        place = "(ctid::text::point)[0]::bigint * 65536 + (ctid::text::point)[1]::bigint"
        query = f"SELECT {place}, {names} FROM {table} ORDER BY ctid"
    else:
        query = f"SELECT line, {names} FROM {table} ORDER BY line"
    with connection.cursor() as cursor:
        cursor.execute(query)
        rows = cursor.fetchall()
    index = params.timestamp_index
    return [
        (
            line,
            params.default_timestamp if index is None else parse_timestamp(values[index]),
            *values,
        )
        for line, *values in rows
    ]


# Wake-ups sent to workers.


NO_WAKEUP_SETTLE_S = 0.1


class SentWakeups:
    """The wake-ups the dispatcher of this run has sent since the fixture began: the job ids
    in the in-process queue (embedded), or the messages in the broker's queue (Celery)."""

    def __init__(self) -> None:
        self.dispatcher = dispatch.dispatcher()
        if isinstance(self.dispatcher, dispatch.CeleryDispatcher):
            import redis

            self.broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
            self.queue = settings.CELERY_TASK_DEFAULT_QUEUE
            self.before = self.broker.llen(self.queue)
        else:
            self._drain()  # what earlier tests queued

    def _drain(self) -> list[str]:
        ids = []
        while True:
            try:
                ids.append(str(self.dispatcher.queue.get_nowait()))
            except queue.Empty:
                return ids

    def job_ids(self, *, of: list, expected: int, timeout: float = 10.0) -> list[str]:
        """The wake-ups sent so far for the jobs `of` (ids), in order, once there are
        `expected` of them (the Celery dispatcher sends from a thread of its own) or `timeout`
        has passed. Only those jobs: an earlier test's wake-up may still arrive."""
        wanted = {str(job_id) for job_id in of}
        if not isinstance(self.dispatcher, dispatch.CeleryDispatcher):
            return [job_id for job_id in self._drain() if job_id in wanted]
        if expected == 0:  # none must come: give the sender a moment to prove it
            time.sleep(min(timeout, NO_WAKEUP_SETTLE_S))
        deadline = time.monotonic() + timeout
        while len(ids := self._sent_ids(wanted)) < expected and time.monotonic() < deadline:
            time.sleep(0.02)
        return ids

    def _sent_ids(self, wanted: set[str]) -> list[str]:
        ids = []
        for raw in reversed(self._sent_messages()):  # pushed on the left: the newest first
            message = json.loads(raw)
            assert message["headers"]["task"] == dispatch.CeleryDispatcher.TASK, message
            args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
            assert kwargs == {}, message
            ids += [job_id for job_id in args if job_id in wanted]
        return ids

    def _sent_messages(self) -> list[bytes]:
        sent = self.broker.llen(self.queue) - self.before
        return self.broker.lrange(self.queue, 0, sent - 1) if sent > 0 else []

    def forget(self) -> None:
        """Take the messages this test sent off the broker: no worker reads that queue."""
        if isinstance(self.dispatcher, dispatch.CeleryDispatcher):
            for raw in self._sent_messages():
                self.broker.lrem(self.queue, 1, raw)


@pytest.fixture
def sent_wakeups():
    wakeups = SentWakeups()
    yield wakeups
    wakeups.forget()


# Object storage: a real SeaweedFS for the whole run, a bucket of its own for each test.


@pytest.fixture(scope="session")
def seaweedfs():
    from tests.seaweedfs import SeaweedFS

    server = SeaweedFS().start()
    yield server
    server.stop()


def s3_storages(server, bucket: str) -> dict:
    """STORAGES with uploads and exports in `bucket` of `server`, as COLLECT_S3_BUCKET
    makes them."""
    from tests.seaweedfs import ACCESS_KEY, REGION, SECRET_KEY

    options = {
        "bucket_name": bucket,
        "endpoint_url": server.endpoint_url,
        "location": "uploads",
        "file_overwrite": True,
        "default_acl": None,
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
        "region_name": REGION,
    }
    return {
        **settings.STORAGES,
        "uploads": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options},
        "exports": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {**options, "location": "exports"},
        },
    }


@pytest.fixture
def bucket(seaweedfs):
    """A fresh bucket that upload storage uses for this test; its name."""
    import uuid

    name = seaweedfs.create_bucket(f"collect-{uuid.uuid4().hex[:12]}")
    with override_settings(STORAGES=s3_storages(seaweedfs, name), COLLECT_S3_BUCKET=name):
        yield name
