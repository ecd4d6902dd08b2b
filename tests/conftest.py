import csv
import io
import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from collect.datasets import DEFAULT_DATASET
from collect.datasets.stores import segment_table
from collect.datasets.stores.base import value_columns
from collect.imports.params import ImportParams
from collect.imports.services import import_start
from collect.timestamps import parse_timestamp

# Tests of what only PostgreSQL has are not collected on SQLite (rather than skipped).
collect_ignore_glob = (
    [] if os.environ.get("DATABASE_URL", "").startswith("postgres") else ["test_postgres_*.py"]
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


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("alice", password="secret-alice")


@pytest.fixture
def other_user(db):
    return get_user_model().objects.create_user("bob", password="secret-bob")


@pytest.fixture
def api(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def csv_bytes(rows: list[list[str]], *, lineterminator: str = "\r\n") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=lineterminator).writerows(rows)
    return buffer.getvalue().encode("utf-8")


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


def segment_exists(job) -> bool:
    return segment_table(job.pk) in connection.introspection.table_names()


def segment_rows(job) -> list[tuple]:
    """The rows a job has written so far, in file order: (line, timestamp in µs, values...).
    `line` is the file's line on SQLite, an increasing number on PostgreSQL."""
    if not segment_exists(job):
        return []
    params = ImportParams.from_job(job)
    names = ", ".join(value_columns(len(params.columns)))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT line, {names} FROM {segment_table(job.pk)} ORDER BY line")
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
