"""Where Collect keeps the files it shares between processes: uploads live in upload storage
by name. A job keeps the name, never a full path, so every process finds the same file.

Upload storage is Django's `STORAGES["uploads"]`: the local directory UPLOAD_DIR by default
(the embedded deployment, or a disk shared by every process), or a bucket through
django-storages' S3 backend when COLLECT_S3_BUCKET is set, so that web and workers on
several machines share nothing but the database, the broker and the bucket. A leaf: it
imports nothing of Collect's but errors and faults.
"""

import io
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages

from collect import faults
from collect.errors import InsufficientStorage

if TYPE_CHECKING:  # a protocol of typeshed's only
    from _typeshed import WriteableBuffer

RETRY_AFTER_FULL_DISK_S = 30
# An import reads its file through a buffer of this size: one ranged GET per 8 MiB from a
# bucket (a request's cost is paid rarely), and memory flat whatever the file's size.
RANGE_BYTES = 8 << 20


def upload_storage() -> Storage:
    return storages["uploads"]


def uploads_are_local() -> bool:
    return isinstance(upload_storage(), FileSystemStorage)


def upload_path(name: str) -> Path:
    """The local file of an upload; only for local upload storage (and tus chunks, which
    are received on the web process's disk before the finished file is stored)."""
    path = (settings.UPLOAD_DIR / name).resolve()
    if path.parent != settings.UPLOAD_DIR.resolve():
        raise ValueError(f"not an upload name: {name!r}")
    return path


def received_delete(name: str) -> None:
    """Delete a resumable upload's file as it is being received: always on this process's
    own disk (UPLOAD_DIR), whichever storage the finished file then goes to."""
    upload_path(name).unlink(missing_ok=True)


def upload_store(source: Path, name: str) -> str:
    """Move a finished temporary file into storage under `name`."""
    if uploads_are_local():
        target = upload_path(name)
        try:
            os.replace(source, target)  # same file system: a rename, no copy
        except OSError:
            shutil.move(source, target)
        return name
    # django-storages sends it as a multipart upload (boto3's transfer manager), in parts,
    # never whole in memory; the name is the job's own, so nothing is there to overwrite.
    with open(source, "rb") as file:
        stored = upload_storage().save(name, File(file))
    source.unlink(missing_ok=True)
    return stored


def upload_open(name: str) -> io.BufferedReader:
    """The upload for reading, seekable; FileNotFoundError if it is gone. From a bucket it is
    read by ranges from wherever the reader seeks (an import, from its checkpoint), never
    downloaded whole (as django-storages' S3File does on its first read)."""
    if uploads_are_local():
        return open(upload_path(name), "rb")
    return io.BufferedReader(object_open(upload_storage(), name), RANGE_BYTES)


def upload_delete(name: str) -> None:
    """Delete a stored upload; one that is not there is no error."""
    if uploads_are_local():
        upload_path(name).unlink(missing_ok=True)  # a file only (Storage.delete rmdirs)
        return
    upload_storage().delete(name)


def storage_answers() -> None:
    """Raises unless upload storage can be reached (readiness)."""
    if uploads_are_local():
        if not os.access(settings.UPLOAD_DIR, os.W_OK):
            raise PermissionError(f"{settings.UPLOAD_DIR} is not writable")
        return
    storage: Any = upload_storage()
    storage.connection.meta.client.head_bucket(Bucket=storage.bucket_name)


class SizedRawFile(io.RawIOBase):
    """A seekable raw file of a known `size`, read from `position` on by `readinto`."""

    size = 0
    position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position


class RangedObject(SizedRawFile):
    """An object in a bucket as a seekable raw file: each read is a GET of the range asked
    for (a boto3 `s3.Object`); its size is known from one HEAD at open."""

    def __init__(self, s3_object: Any) -> None:
        super().__init__()
        self.object = s3_object
        try:
            self.size: int = s3_object.content_length
        except Exception as error:
            if is_missing(error):
                raise FileNotFoundError(f"no object {s3_object.key!r} in the bucket") from None
            raise
        self.position = 0

    def readinto(self, buffer: "WriteableBuffer") -> int:
        view = memoryview(buffer).cast("B")
        end = min(self.size, self.position + len(view))
        if end <= self.position:
            return 0
        body = self.object.get(Range=f"bytes={self.position}-{end - 1}")["Body"]
        count = 0
        try:
            while count < end - self.position and (data := body.read(end - self.position - count)):
                view[count : count + len(data)] = data
                count += len(data)
        finally:
            body.close()
        self.position += count
        return count


class JoinedFile(SizedRawFile):
    """Raw files read one after the other, each only up to its given size, as one seekable
    file (a server can send it as a file: waitress frees its thread while a client reads).
    It owns the files: closing it closes them."""

    def __init__(self, parts: list[tuple[io.RawIOBase | io.BufferedIOBase, int]]) -> None:
        super().__init__()
        self.files = [file for file, _ in parts]
        self.sizes = [size for _, size in parts]
        self.starts: list[int] = []
        offset = 0
        for size in self.sizes:
            self.starts.append(offset)
            offset += size
        self.size = offset
        self.position = 0

    def readinto(self, buffer: "WriteableBuffer") -> int:
        view = memoryview(buffer).cast("B")
        for file, start, size in zip(self.files, self.starts, self.sizes, strict=True):
            if start <= self.position < start + size:
                wanted = min(len(view), start + size - self.position)
                file.seek(self.position - start)
                count = file.readinto(view[:wanted]) or 0
                self.position += count
                return count
        return 0

    def close(self) -> None:
        for file in self.files:
            file.close()
        super().close()


def object_open(storage: Any, name: str) -> RangedObject:
    """A stored object of django-storages' S3 backend, read by ranges (see RangedObject)."""
    key = storage._normalize_name(name)  # the bucket key of `name`, under its location
    return RangedObject(storage.bucket.Object(key))


def is_missing(error: Exception) -> bool:
    """Whether a bucket's error says there is no such object (or multipart upload)."""
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code")) in (
        "404",
        "NoSuchKey",
        "NotFound",
        "NoSuchUpload",
    )


def raise_write_error(error: OSError) -> NoReturn:
    """Raise a failed write of an upload as the client should hear of it: a full disk is
    507 (the client may try again later); anything else stays the server's own error."""
    if faults.is_disk_full(error):
        raise InsufficientStorage(
            "the server's disk is full: what was sent now is not kept; try again later",
            retry_after=RETRY_AFTER_FULL_DISK_S,
        ) from error
    raise error
