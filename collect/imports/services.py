"""Starting an import from a file that has arrived in full, and checking the start of one
that is still arriving."""

import hashlib
import io
import uuid

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from collect.datasets.services import dataset_check_columns, dataset_for_import
from collect.datasets.stores import segment_store
from collect.errors import Conflict, InvalidInput
from collect.files import (
    Received,
    received_open,
    received_size,
    upload_name,
    upload_store,
    upload_unstore,
    uploads_are_local,
)
from collect.imports.compressed import InputError, open_input
from collect.imports.csvsource import Header, HeaderError, last_line_end, read_header
from collect.imports.params import ImportCheckpoint, ImportParams, OnError
from collect.jobs.dispatch import job_enqueue
from collect.jobs.models import Job
from collect.jobs.services import job_check_room
from collect.jobs.states import Kind, Status
from collect.timestamps import microseconds

DEFAULT_TIMESTAMP_COLUMN = "submitted_at"
# An import in these states holds its rows, or will: the same bytes again are a duplicate.
HOLDS_ITS_ROWS = (Status.QUEUED, Status.RUNNING, Status.PAUSING, Status.PAUSED, Status.COMPLETED)


def import_start(
    *,
    owner: User,
    source: Received,
    filename: str,
    dataset_name: str,
    timestamp_column: str | None = None,
    on_error: str = OnError.ABORT,
    max_rejects: int | None = None,
    upload_id: str | None = None,
    sha256: str | None = None,
    force: bool = False,
) -> Job:
    """Check the file's header, create its import job and queue it; the file moves into
    upload storage (chunks already in the bucket are listed there). Raises InvalidInput,
    leaving the file where it was, if it cannot work,
    and Conflict for bytes (`sha256`, computed here if not given) that an import completed
    or under way in the dataset already has, unless `force`."""
    if on_error not in OnError.values:
        raise InvalidInput(f"on_error must be one of {', '.join(OnError.values)}")
    try:
        with (
            received_open(source) as file,
            open_input(file, limit=settings.COLLECT_MAX_UPLOAD_BYTES) as stream,
        ):
            header = read_header(stream)
    except (HeaderError, InputError) as error:
        raise InvalidInput(str(error)) from None
    _check_width(header.columns)
    timestamp_index = _timestamp_index(header.columns, timestamp_column)
    if sha256 is None:
        with received_open(source) as file:
            sha256 = hashlib.file_digest(file, "sha256").hexdigest()
    job_id = uuid.uuid4()
    path = upload_name(str(job_id), source)
    size = received_size(source)
    # Into a bucket the file goes before the job's transaction: sending it takes as long as
    # the file is large, and a transaction held open that long is ended by the database
    # (idle_in_transaction_session_timeout). If the job is then refused, the object goes.
    local = uploads_are_local()
    if not local:
        upload_store(source, path)
    try:
        return _import_create(
            job_id,
            path,
            owner=owner,
            source=source,
            size=size,
            header=header,
            filename=filename,
            dataset_name=dataset_name,
            timestamp_index=timestamp_index,
            on_error=on_error,
            max_rejects=max_rejects,
            upload_id=upload_id,
            sha256=sha256,
            force=force,
            move_file=local,
        )
    except BaseException:
        if not local:
            upload_unstore(path)
        raise


def _import_create(
    job_id: uuid.UUID,
    path: str,
    *,
    owner: User,
    source: Received,
    size: int,
    header: Header,
    filename: str,
    dataset_name: str,
    timestamp_index: int | None,
    on_error: str,
    max_rejects: int | None,
    upload_id: str | None,
    sha256: str,
    force: bool,
    move_file: bool,
) -> Job:
    with transaction.atomic():
        job_check_room(owner)  # under a lock on the owner: no twin can start meanwhile
        if not force:
            import_check_duplicate(owner=owner, dataset_name=dataset_name, sha256=sha256)
        dataset = dataset_for_import(owner=owner, name=dataset_name, columns=header.columns)
        job = Job(id=job_id, kind=Kind.IMPORT, owner=owner, dataset=dataset)
        job.queued_at = timezone.now()
        job.bytes_total = size
        job.bytes_done = min(header.end_offset, job.bytes_total)  # less if compressed
        job.checkpoint = ImportCheckpoint(
            offset=header.end_offset, line=header.lines, formula_columns=[]
        ).to_json()
        params = ImportParams(
            path=path,
            filename=filename,
            upload_id=upload_id,
            columns=header.columns,
            on_error=on_error,
            max_rejects=max_rejects,
            sha256=sha256,
            timestamp_index=timestamp_index,
            # Rows of a file without a timestamp column are stamped with the upload time.
            default_timestamp=microseconds(timezone.now()),
        )
        job.params = params.to_json()
        job.save()
        if move_file:  # on local disk: a rename, with the job
            upload_store(source, params.path)
        job_enqueue(job.id)
    return job


def import_check_duplicate(*, owner: User, dataset_name: str, sha256: str) -> None:
    """Refuse with Conflict, naming the job, bytes that the owner's dataset already has
    from a completed import or that an import under way is adding to it."""
    twin = (
        Job.objects.filter(
            owner=owner,
            dataset__name=dataset_name,
            kind=Kind.IMPORT,
            status__in=HOLDS_ITS_ROWS,
            params__sha256=sha256,
        )
        .order_by("-created_at")
        .first()
    )
    if twin is None:
        return
    done = "were imported" if twin.status == Status.COMPLETED else "are being imported"
    raise Conflict(
        f"these bytes {done} into dataset {dataset_name!r} already, by task {twin.pk} "
        f"({twin.status}); to import them a second time, upload again with force",
        task_id=str(twin.pk),
        status=twin.status,
    )


def import_check_start(
    *, owner: User, head: bytes, dataset_name: str, timestamp_column: str | None = None
) -> bool:
    """Whether the first bytes of a file still arriving hold its whole header, which the
    import would then accept. Raises InvalidInput, as `import_start` would, for a header it
    would refuse: so a bad file is refused at its first chunk, not at its last."""
    whole_lines = head[: last_line_end(head)]
    try:
        header = read_header(io.BytesIO(whole_lines))
    except HeaderError as error:
        if "not valid CSV" in str(error) or not whole_lines.strip():
            return False  # a quoted name may go on in the bytes still to come
        raise InvalidInput(str(error)) from None
    _check_width(header.columns)
    _timestamp_index(header.columns, timestamp_column)
    dataset_check_columns(owner=owner, name=dataset_name, columns=header.columns)
    return True


def _check_width(columns: list[str]) -> None:
    limit = segment_store().max_width()
    if len(columns) > limit:
        raise InvalidInput(
            f"the file has {len(columns)} columns; this database holds at most {limit}",
            columns=len(columns),
            limit=limit,
        )


def _timestamp_index(columns: list[str], requested: str | None) -> int | None:
    if requested:
        if requested not in columns:
            raise InvalidInput(f"timestamp_column {requested!r} is not in the file's header")
        return columns.index(requested)
    if DEFAULT_TIMESTAMP_COLUMN in columns:
        return columns.index(DEFAULT_TIMESTAMP_COLUMN)
    return None
