"""Rows in the state a test needs, made directly: no upload, no import run, no `.update()`
after the fact. Plain functions; each gives valid parameters and checkpoints (the kinds' own
dataclasses), so that whatever reads a job (the API, the services, the runner) can."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from collect.datasets import DEFAULT_DATASET
from collect.datasets.models import Dataset
from collect.exports.params import ExportCheckpoint, ExportParams
from collect.files import upload_path
from collect.imports.params import ImportCheckpoint, ImportParams, OnError
from collect.jobs.models import Job
from collect.jobs.states import OWNED, Kind, Status
from collect.timestamps import microseconds, parse_timestamp
from collect.uploads.models import Upload
from collect.uploads.services import upload_expiry

COLUMNS = ["id", "submitted_at"]
WORKER = "test-worker"
_FINAL = (Status.COMPLETED, Status.FAILED, Status.TERMINATED)


def user_factory(username: str, *, password: str | None = None, **fields):
    return get_user_model().objects.create_user(username, password=password, **fields)


def dataset_factory(owner, name: str = DEFAULT_DATASET, columns=COLUMNS) -> Dataset:
    return Dataset.objects.create(owner=owner, name=name, columns=list(columns))


def job_factory(
    owner,
    kind: str = Kind.IMPORT,
    status: str = Status.QUEUED,
    *,
    dataset: Dataset | None = None,
    **fields,
) -> Job:
    """A job of `kind` in `status`, with what that state implies: a worker and a lease when
    one owns it, `paused_at` when paused, `finished_at` when it has ended. An import's file
    is not in upload storage (a run would fail); `fields` override anything."""
    now = timezone.now()
    if dataset is None:
        dataset = Dataset.objects.filter(owner=owner, name=DEFAULT_DATASET).first()
        dataset = dataset or dataset_factory(owner)
    job = Job(kind=kind, status=status, owner=owner, dataset=dataset, queued_at=now)
    if kind == Kind.IMPORT:
        job.params = ImportParams(
            path=f"{job.id}.csv",
            filename="upload.csv",
            upload_id=None,
            columns=dataset.columns,
            on_error=OnError.ABORT,
            timestamp_index=(
                dataset.columns.index("submitted_at") if "submitted_at" in dataset.columns else None
            ),
            default_timestamp=microseconds(now),
        ).to_json()
        header = ",".join(dataset.columns) + "\r\n"
        job.checkpoint = ImportCheckpoint(offset=len(header), line=1).to_json()
        job.bytes_done = job.bytes_total = len(header)
    else:
        job.params = ExportParams(
            range={"from": "2024-01-01", "to": "2024-01-31"},
            start=parse_timestamp("2024-01-01"),
            end=parse_timestamp("2024-02-01"),
            header=dataset.columns,
            columns=list(range(1, len(dataset.columns) + 1)),
            raw=False,
            segments=[],
            lines_total=0,
        ).to_json()
        job.checkpoint = ExportCheckpoint().to_json()
    if status != Status.QUEUED:
        job.started_at = now
    if status in OWNED:
        job.worker = WORKER
        job.lease_expires_at = now + timedelta(seconds=settings.COLLECT_LEASE_SECONDS)
    if status == Status.PAUSED:
        job.paused_at = now
    if status in _FINAL:
        job.finished_at = now
    if status == Status.FAILED:
        job.error = "the job failed"
    if status in (Status.TERMINATING, Status.TERMINATED):
        job.termination_reason = "terminated by user"
    created_at = fields.pop("created_at", None)
    for name, value in fields.items():
        setattr(job, name, value)
    job.save(force_insert=True)
    if created_at is not None:  # auto_now_add sets it on insert, whatever it was
        Job.objects.filter(pk=job.pk).update(created_at=created_at)
        job.created_at = created_at
    return job


def upload_factory(
    owner,
    content: bytes = b"",
    *,
    length: int | None = None,
    deferred: bool = False,
    state: str = Upload.State.RECEIVING,
    **fields,
) -> Upload:
    """A resumable upload that has received `content` (in upload storage) of `length` bytes:
    `len(content)` unless given, or not yet declared if `deferred`."""
    if not deferred and length is None:
        length = len(content)
    upload = Upload.objects.create(
        owner=owner,
        state=state,
        length=None if deferred else length,
        offset=len(content),
        expires_at=fields.pop("expires_at", None) or upload_expiry(),
        **fields,
    )
    upload_path(upload.file_name).write_bytes(content)
    return upload
