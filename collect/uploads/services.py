"""Resumable uploads: create one, append a chunk at its offset, join partial uploads into one,
terminate, expire. A completed upload starts its import.

The row is the truth about how many bytes are safe: a chunk is written and synced to the file
first, then the row's offset moves past it. Bytes a crash leaves beyond the row's offset are
cut off by the next chunk, which is written at the row's offset.

With upload storage in a bucket, no web process keeps anything of an upload: each chunk is
stored as an object of its own before the offset moves past it (UploadChunk), the row's
claim (collect/uploads/writers.py) stands in for the file lock, and the finished file is its
chunks read one after the other, never copied.
"""

import contextlib
import fcntl
import hashlib
import hmac
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, BinaryIO, NoReturn, Protocol
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.http import UnreadablePostError
from django.utils import timezone

from collect.datasets import DEFAULT_DATASET
from collect.datasets.services import dataset_check_name
from collect.errors import (
    ChecksumMismatch,
    CollectError,
    Conflict,
    Forbidden,
    Gone,
    InvalidInput,
    Locked,
    TooLarge,
)
from collect.files import (
    Chunk,
    Received,
    chunk_store,
    chunks_delete,
    raise_write_error,
    received_delete,
    received_open,
    upload_path,
    uploads_are_local,
)
from collect.imports.choices import OnError
from collect.imports.compressed import InputError, peek
from collect.imports.csvsource import MAX_HEADER_BYTES
from collect.imports.services import import_check_duplicate, import_check_start, import_start
from collect.jobs.models import Job
from collect.jobs.services import job_check_room
from collect.uploads.models import Upload
from collect.uploads.selectors import upload_chunks, upload_visible_to
from collect.uploads.writers import Claim, chunk_name, chunk_prefix

log = logging.getLogger(__name__)
CHECKSUM_ALGORITHMS = ("sha1", "md5", "sha256")
READ_BYTES = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


class _Body(Protocol):
    """What a chunk is read from: the request's body."""

    def read(self, size: int, /) -> bytes: ...


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes


@dataclass(frozen=True)
class UploadOptions:
    """What the client says about the file: its name and where and how to import it."""

    filename: str = ""
    dataset: str = DEFAULT_DATASET
    timestamp_column: str = ""
    on_error: str = OnError.ABORT
    max_rejects: int | None = None
    sha256: str = ""  # of the whole file, hex, if the client says: checked at creation
    force: bool = False  # import even bytes that the dataset has already

    def __post_init__(self) -> None:
        dataset_check_name(self.dataset)
        if self.sha256 and not _SHA256.fullmatch(self.sha256):
            raise InvalidInput("Upload-Metadata: sha256 must be 64 hexadecimal digits")
        if self.on_error not in OnError.values:
            raise InvalidInput(f"on_error must be one of {', '.join(OnError.values)}")
        if len(self.filename) > 255 or len(self.timestamp_column) > 200:
            raise InvalidInput("filename or timestamp_column is too long")


def upload_expiry(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) + timedelta(seconds=settings.COLLECT_UPLOAD_TTL)


def upload_create(
    *,
    owner: User,
    length: int | None,
    options: UploadOptions,
    metadata: str = "",
    partial: bool = False,
) -> Upload:
    """A new, empty upload; `length` None means the client declares it later. Refused, as
    its import would be, when the owner has no room for another job."""
    if length is not None:
        _check_length(length)
    if not partial:
        with transaction.atomic():
            job_check_room(owner)
            if options.sha256 and not options.force:  # before a byte is sent for nothing
                import_check_duplicate(
                    owner=owner, dataset_name=options.dataset, sha256=options.sha256
                )
    upload = _new_upload(
        owner,
        options,
        metadata,
        length=length,
        concat=Upload.Concat.PARTIAL if partial else Upload.Concat.NONE,
    )
    if uploads_are_local():  # in a bucket there is nothing until a chunk arrives
        upload_path(upload.file_name).touch()
    if length == 0:
        return _complete(upload)
    return upload


def upload_append(
    *,
    owner: User,
    upload_id: str,
    offset: int,
    body: BinaryIO,
    body_length: int | None = None,
    checksum: Checksum | None = None,
    length: int | None = None,
) -> Upload:
    """Write one chunk at `offset`, which must be where the upload stands; a chunk whose
    checksum does not match is discarded whole. `length` declares a deferred length."""
    upload = _receiving(owner, upload_id)
    if not uploads_are_local():
        return _append_to_bucket(upload, offset, body, body_length, checksum, length)
    with _writing(upload) as file:
        upload.refresh_from_db()  # another request may have moved it while we waited
        _check_receiving(upload)
        room = _check_chunk(upload, offset, body_length, length)
        written = _write_chunk(file, offset, body, room, checksum)
        return _advance(upload, offset, written)


def _check_chunk(upload: Upload, offset: int, body_length: int | None, length: int | None) -> int:
    """Refuse a chunk that is not at the upload's offset or goes past its end; returns the
    room left. `length` declares a deferred length."""
    if offset != upload.offset:
        raise Conflict(
            f"Upload-Offset {offset} does not match the upload's offset {upload.offset}",
            offset=upload.offset,
        )
    if length is not None:
        _declare_length(upload, length)
    room = (upload.length if upload.length is not None else _max_bytes()) - offset
    if body_length is not None and body_length > room:
        raise TooLarge(
            f"the chunk of {body_length} bytes goes past the upload's end",
            room=room,
        )
    return room


def _append_to_bucket(
    upload: Upload,
    offset: int,
    body: BinaryIO,
    body_length: int | None,
    checksum: Checksum | None,
    length: int | None,
) -> Upload:
    """The chunk, spooled on this process's disk, is stored whole as an object of its own;
    then the offset moves past it, only if this request still holds the upload's claim and
    the offset is still where the chunk started. Any web process may take the next one."""
    with Claim(upload) as claim:  # Locked if another request holds it
        upload.refresh_from_db()
        _check_receiving(upload)
        room = _check_chunk(upload, offset, body_length, length)
        chunk = _store_chunk(upload, offset, _Renewing(body, claim), room, checksum, claim)
        moved = claim.commit(offset, chunk, upload_expiry())
    upload.refresh_from_db()
    if not moved:  # it was too slow: terminated, or another request took over meanwhile
        _check_receiving(upload)
        if upload.offset != offset:
            raise Conflict(
                f"another request moved the upload to offset {upload.offset}",
                offset=upload.offset,
            )
        raise Locked("another request took this upload over")
    return _after_chunk(upload)


def _store_chunk(
    upload: Upload,
    offset: int,
    body: _Body,
    room: int,
    checksum: Checksum | None,
    claim: Claim,
) -> Chunk | None:
    """The chunk in the bucket, whole; None for an empty one. The claim is renewed while
    it arrives and while it is sent."""
    with tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR, buffering=0) as spool:
        written = _write_chunk(spool, 0, body, room, checksum, sync=False)
        if not written:
            return None
        spool.seek(0)
        name = chunk_name(upload, offset, claim)
        chunk_store(spool, name, progress=claim.keep)
    return Chunk(name, written)


class _Renewing:
    """A request body whose every read first renews the claim of the request reading it."""

    def __init__(self, body: BinaryIO, claim: Claim) -> None:
        self.body, self.claim = body, claim

    def read(self, size: int, /) -> bytes:
        self.claim.keep()
        return self.body.read(size)


def upload_concatenate(
    *, owner: User, part_ids: list[str], options: UploadOptions, metadata: str = ""
) -> Upload:
    """A final upload made of complete partial uploads, in order; its import starts. The
    parts are claimed first, under their row locks: a second final of the same parts is a
    conflict, not a second import."""
    if not part_ids:
        raise InvalidInput("Upload-Concat: final names no partial uploads")
    parts = _claim_parts(owner, part_ids)
    length = sum(part.offset for part in parts)
    final = _new_upload(
        owner,
        options,
        metadata,
        length=length,
        concat=Upload.Concat.FINAL,
        parts=[str(part.id) for part in parts],
    )
    try:
        final.sha256 = _join(final, parts) if uploads_are_local() else _digest(final)
    except OSError as error:
        _give_back(final, parts)
        raise_write_error(error)
    final.offset = length
    final.save(update_fields=["offset", "sha256"])
    try:
        final = _complete(final)
    except CollectError:
        _give_back(final, parts)
        raise
    # Their bytes are in the final upload now; keeping them would double the disk used. In
    # a bucket the final upload is its parts' chunks: they go with the import's file.
    if uploads_are_local():
        for part in parts:
            received_delete(part.file_name)
    return final


def _claim_parts(owner: User, part_ids: list[str]) -> list[Upload]:
    # A joined part is a conflict here (another final has it), not gone as for its HEAD.
    keys = [_part_key(owner, part_id) for part_id in part_ids]
    if len(set(keys)) != len(keys):
        raise InvalidInput("Upload-Concat: final names a partial upload more than once")
    with transaction.atomic():
        locked = {part.pk: part for part in Upload.objects.select_for_update().filter(pk__in=keys)}
        parts = [locked[key] for key in keys]
        for part in parts:
            if part.concat != Upload.Concat.PARTIAL:
                raise InvalidInput(f"upload {part.id} is not a partial upload")
            if part.state == Upload.State.JOINED:  # by a concurrent final a moment ago
                raise Conflict(f"upload {part.id} is already part of a final upload")
            if part.state != Upload.State.COMPLETE:
                raise InvalidInput(f"partial upload {part.id} is not complete")
        _check_length(sum(part.offset for part in parts))
        Upload.objects.filter(pk__in=[part.pk for part in parts]).update(state=Upload.State.JOINED)
    return parts


def _part_key(owner: User, part_id: str) -> UUID:
    try:
        return upload_visible_to(owner, part_id).pk
    except Gone:
        joined = Upload.objects.filter(pk=part_id, owner=owner, state=Upload.State.JOINED)
        if joined.exists():
            raise Conflict(f"upload {part_id} is already part of a final upload") from None
        raise


def _give_back(final: Upload, parts: list[Upload]) -> None:
    """The final upload could not be made: its parts may be joined again."""
    Upload.objects.filter(pk=final.pk).update(state=Upload.State.FAILED)
    _received_delete(final)  # in a bucket it has nothing of its own: its parts keep theirs
    Upload.objects.filter(pk__in=[part.pk for part in parts]).update(state=Upload.State.COMPLETE)


def _join(final: Upload, parts: list[Upload]) -> str:
    """Copy the parts into the final upload's file; returns the SHA-256 of the whole, which
    costs nothing more here, whatever the client declared."""
    digest = hashlib.sha256()
    with open(upload_path(final.file_name), "wb") as target:
        for part in parts:
            with open(upload_path(part.file_name), "rb") as source:
                while block := source.read(READ_BYTES):
                    digest.update(block)
                    target.write(block)
        target.flush()
        os.fsync(target.fileno())
    return digest.hexdigest()


def _digest(upload: Upload) -> str:
    """The SHA-256 of the upload's bytes in the bucket, read back."""
    with received_open(upload_chunks(upload)) as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def upload_terminate(*, owner: User, upload_id: str) -> None:
    """Forget the upload and free its bytes; an import it already started is not touched."""
    upload = upload_visible_to(owner, upload_id)
    Upload.objects.filter(pk=upload.pk).update(state=Upload.State.TERMINATED)
    if upload.job_id is None:
        _received_delete(upload)


def upload_sweep(now: datetime | None = None) -> int:
    """Expire unfinished uploads, and complete partial ones never joined, past their time;
    returns how many."""
    now = now or timezone.now()
    expired = Upload.objects.filter(expires_at__lt=now).filter(
        state__in=(Upload.State.RECEIVING, Upload.State.COMPLETE), job__isnull=True
    )
    count = 0
    for upload in expired:
        if Upload.objects.filter(pk=upload.pk, state=upload.state).update(
            state=Upload.State.EXPIRED
        ):
            if uploads_are_local() or not _has_import(upload):
                _received_delete(upload)
            count += 1
    return count


def _has_import(upload: Upload) -> bool:
    """Whether an import started from the upload: in a bucket, one whose process died before
    the upload's row said so reads the upload's chunks, which must stay (see _complete)."""
    return Job.objects.filter(params__upload_id=str(upload.pk)).exists()


def _received(upload: Upload) -> Received:
    """The bytes received so far: a file on this disk, or chunks in the bucket."""
    return upload_path(upload.file_name) if uploads_are_local() else upload_chunks(upload)


def _received_delete(upload: Upload) -> None:
    """Free the bytes received: in a bucket, everything under the upload's prefix (its
    chunks, and any that a request which lost its chunk left behind)."""
    if uploads_are_local():
        received_delete(upload.file_name)
    else:
        chunks_delete(chunk_prefix(upload))


def _new_upload(owner: User, options: UploadOptions, metadata: str, **fields: Any) -> Upload:
    return Upload.objects.create(
        owner=owner,
        metadata=metadata,
        filename=_display_name(options.filename),
        dataset=options.dataset,
        timestamp_column=options.timestamp_column,
        on_error=options.on_error,
        max_rejects=options.max_rejects,
        sha256=options.sha256,
        force=options.force,
        expires_at=upload_expiry(),
        **fields,
    )


def _receiving(owner: User, upload_id: str) -> Upload:
    upload = upload_visible_to(owner, upload_id)
    _check_receiving(upload)
    return upload


def _check_receiving(upload: Upload) -> None:
    if upload.concat == Upload.Concat.FINAL:
        raise Forbidden("a final concatenated upload takes no more bytes")
    if upload.state == Upload.State.FAILED:
        raise InvalidInput(f"the upload was refused: {upload.error}")
    if upload.state != Upload.State.RECEIVING:
        raise Conflict(f"the upload is {upload.state}; it takes no more bytes")


def _declare_length(upload: Upload, length: int) -> None:
    if upload.length is not None:
        if length != upload.length:
            raise InvalidInput(f"the upload's length is already {upload.length}")
        return
    _check_length(length)
    if length < upload.offset:
        raise InvalidInput(f"Upload-Length {length} is less than the bytes received")
    upload.length = length
    upload.save(update_fields=["length"])


def _check_length(length: int) -> None:
    if length < 0:
        raise InvalidInput("Upload-Length must not be negative")
    if length > _max_bytes():
        raise TooLarge(
            f"the file is larger than the limit of {_max_bytes()} bytes", limit=_max_bytes()
        )


def _max_bytes() -> int:
    return settings.COLLECT_MAX_UPLOAD_BYTES


@contextlib.contextmanager
def _writing(upload: Upload) -> Iterator[BinaryIO]:
    """The upload's file, open for writing by this request alone."""
    # Unbuffered: a write that finds the disk full fails there, with nothing left to flush.
    with open(upload_path(upload.file_name), "r+b", buffering=0) as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Locked("another request is writing to this upload") from None
        yield file  # closing the file releases the lock


def _write_chunk(
    file: BinaryIO,
    offset: int,
    body: _Body,
    room: int,
    checksum: Checksum | None,
    *,
    sync: bool = True,
) -> int:
    """Append the body at `offset`; returns its size. A body that breaks off keeps what
    arrived, unless a checksum must cover the whole of it. `sync`: make it durable here."""
    file.seek(offset)
    file.truncate()
    hasher = hashlib.new(checksum.algorithm) if checksum else None
    written = 0
    try:
        while data := body.read(READ_BYTES):
            written += len(data)
            if written > room:
                raise TooLarge("the chunk goes past the upload's end", room=room)
            _write_all(file, data)
            if hasher:
                hasher.update(data)
    except (OSError, UnreadablePostError) as error:
        if hasher:
            file.truncate(offset)
            raise InvalidInput(f"the chunk broke off: {error}") from None
        log.info("upload chunk broke off after %d bytes: %s", written, error)
    except CollectError:
        file.truncate(offset)
        raise
    if hasher and checksum and not hmac.compare_digest(hasher.digest(), checksum.digest):
        file.truncate(offset)
        raise ChecksumMismatch(f"the chunk's {checksum.algorithm} checksum does not match")
    try:
        if sync:
            os.fsync(file.fileno())
    except OSError as error:
        file.truncate(offset)
        raise_write_error(error)
    return written


def _write_all(file: BinaryIO, data: bytes) -> None:
    """Write all of `data` to an unbuffered file; a full disk is the client's 507."""
    view = memoryview(data)
    try:
        while view:
            view = view[file.write(view) :]
    except OSError as error:
        raise_write_error(error)


def _advance(upload: Upload, offset: int, written: int) -> Upload:
    moved = Upload.objects.filter(pk=upload.pk, state=Upload.State.RECEIVING, offset=offset).update(
        offset=offset + written, expires_at=upload_expiry()
    )
    upload.refresh_from_db()
    if not moved:
        _check_receiving(upload)  # terminated while the chunk arrived
    return _after_chunk(upload)


def _after_chunk(upload: Upload) -> Upload:
    """The last chunk completes the upload; until the header has arrived, it is checked."""
    if upload.length is not None and upload.offset == upload.length:
        return _complete(upload)
    if not upload.header_checked and upload.concat != Upload.Concat.PARTIAL:
        _check_start(upload)
    return upload


def _check_start(upload: Upload) -> None:
    """Refuse a file whose header its import would refuse as soon as the header is in,
    not after gigabytes more."""
    try:
        with received_open(_received(upload)) as file:
            head = peek(file, MAX_HEADER_BYTES)
        checked = import_check_start(
            owner=upload.owner,
            head=head,
            dataset_name=upload.dataset,
            timestamp_column=upload.timestamp_column or None,
        )
    except InputError as error:
        _fail(upload, InvalidInput(str(error)))
    except CollectError as error:
        _fail(upload, error)
    if checked:
        Upload.objects.filter(pk=upload.pk).update(header_checked=True)


def _complete(upload: Upload) -> Upload:
    """All bytes are in: a partial upload waits to be joined, any other starts its import.
    An import that cannot start (a bad header, say) fails the upload with the reason."""
    if upload.concat == Upload.Concat.PARTIAL:
        Upload.objects.filter(pk=upload.pk).update(state=Upload.State.COMPLETE)
        upload.refresh_from_db()
        return upload
    # On local disk the job and the upload's new state commit together. In a bucket the
    # file is read back (its header, its SHA-256) by import_start, for as long as that
    # takes, so no transaction may be open around it; should this process die before the
    # upload's row says `complete`, the job exists all the same and the upload is expired
    # later by the sweeper, which leaves the chunks to the job (_has_import).
    together = transaction.atomic() if uploads_are_local() else contextlib.nullcontext()
    try:
        with together:
            job = import_start(
                owner=upload.owner,
                source=_received(upload),
                filename=upload.filename or "upload.csv",
                dataset_name=upload.dataset,
                timestamp_column=upload.timestamp_column or None,
                on_error=upload.on_error,
                max_rejects=upload.max_rejects,
                upload_id=str(upload.id),
                # The client's word for its own bytes, else read here (see the docs).
                sha256=upload.sha256 or None,
                force=upload.force,
            )
            upload.state, upload.job = Upload.State.COMPLETE, job
            upload.save(update_fields=["state", "job"])
    except CollectError as error:
        _fail(upload, error)
    return upload


def _fail(upload: Upload, error: CollectError) -> NoReturn:
    """The upload cannot become an import: keep the reason, free the bytes, refuse."""
    upload.state, upload.error = Upload.State.FAILED, error.message
    upload.save(update_fields=["state", "error"])
    _received_delete(upload)
    raise error


def _display_name(filename: str) -> str:
    """Only the last part of a client's file name, for showing: it is never a path here."""
    return os.path.basename(filename.replace("\\", "/"))
