"""Where Collect keeps the files it shares between processes: uploads live in upload storage
by name. A job keeps the name, never a full path, so every process finds the same file.

Upload storage is Django's `STORAGES["uploads"]`: the local directory UPLOAD_DIR by default
(the embedded deployment, or a disk shared by every process), or a bucket through
django-storages' S3 backend when COLLECT_S3_BUCKET is set, so that web and workers on
several machines share nothing but the database, the broker and the bucket. A leaf: it
imports nothing of Collect's but errors and faults.

In a bucket, a resumable upload arrives as chunks, each an object of its own under a prefix of
its upload's (`tus/<upload id>/`); the file an import reads is then a list of them
(`<job id>.chunks`), read one after the other, never copied into one object.
"""

import bisect
import io
import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn, cast

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
# A stored file of this suffix is a list of chunk objects (see Chunk), not the file itself.
CHUNKS_SUFFIX = ".chunks"
DELETE_BATCH = 1000  # S3 deletes at most 1,000 objects in one request


@dataclass(frozen=True)
class Chunk:
    """One piece of a file received in pieces into a bucket: an object of upload storage."""

    name: str
    size: int


# A file that has arrived whole: on this process's disk, or as chunks in the bucket.
Received = Path | list[Chunk]


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


def upload_name(stem: str, source: Received) -> str:
    """The name under which upload_store keeps `source` for a job named `stem`."""
    return f"{stem}{CHUNKS_SUFFIX}" if isinstance(source, list) else f"{stem}.csv"


def received_open(source: Received) -> io.BufferedReader:
    if isinstance(source, list):
        return chunks_open(source)
    return open(source, "rb")


def received_size(source: Received) -> int:
    if isinstance(source, list):
        return sum(chunk.size for chunk in source)
    return source.stat().st_size


def upload_store(source: Received, name: str) -> str:
    """Move a finished temporary file into storage under `name`; chunks already in the
    bucket stay where they are, and `name` lists them."""
    if isinstance(source, list):
        listing = [{"name": chunk.name, "size": chunk.size} for chunk in source]
        _bucket_object(name).put(Body=json.dumps({"chunks": listing}).encode())
        return name
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
    if name.endswith(CHUNKS_SUFFIX):
        return chunks_open(_chunks_listed(name))
    return io.BufferedReader(object_open(upload_storage(), name), RANGE_BYTES)


def upload_delete(name: str) -> None:
    """Delete a stored upload; one that is not there is no error. A list of chunks goes with
    everything under its chunks' prefixes: the chunks, and any object that a request which
    lost its chunk left there."""
    if uploads_are_local():
        upload_path(name).unlink(missing_ok=True)  # a file only (Storage.delete rmdirs)
        return
    if name.endswith(CHUNKS_SUFFIX):
        try:
            chunks = _chunks_listed(name)
        except FileNotFoundError:
            chunks = []
        for prefix in dict.fromkeys(chunk.name.rsplit("/", 1)[0] + "/" for chunk in chunks):
            chunks_delete(prefix)
    upload_storage().delete(name)


def upload_unstore(name: str) -> None:
    """Undo upload_store for a job that was refused. A list of chunks goes, its chunks stay:
    they are still the resumable upload's, which decides what becomes of them."""
    if name.endswith(CHUNKS_SUFFIX):
        upload_storage().delete(name)
    else:
        upload_delete(name)


def chunk_store(source: BinaryIO, name: str, *, progress: Callable[[int], Any]) -> None:
    """Send `source`, from where it stands, as the object `name`: whole or not at all (a
    large one is a multipart upload, completed at its end). In this thread: `progress` is
    called with each block's size, and may raise to stop it."""
    from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped]  # a bucket's

    config = TransferConfig(use_threads=False)
    _bucket_object(name).upload_fileobj(source, Config=config, Callback=progress)


def chunk_delete(name: str) -> None:
    upload_storage().delete(name)


def chunks_open(chunks: Sequence[Chunk]) -> io.BufferedReader:
    """Chunk objects read one after the other, by ranged GETs, as one seekable file: no
    request is made at open, nor a connection held per chunk between reads."""
    parts = [(RangedObject(_bucket_object(c.name), size=c.size), c.size) for c in chunks]
    return io.BufferedReader(JoinedFile(list(parts)), RANGE_BYTES)


def chunks_delete(prefix: str) -> None:
    """Delete every object under `prefix` in upload storage, and abort the multipart
    uploads still open there (of a request that died sending a large chunk)."""
    bucket = Bucket(upload_storage())
    under = prefix.rstrip("/") + "/"
    for upload_id, key, _ in bucket.uploads_started(under):
        bucket.abort(key, upload_id)
    bucket.delete([key for key, _ in bucket.objects(under)])


def _chunks_listed(name: str) -> list[Chunk]:
    try:
        body = _bucket_object(name).get()["Body"]
    except Exception as error:
        if is_missing(error):
            raise FileNotFoundError(f"no object {name!r} in the bucket") from None
        raise
    with body:
        listing = json.loads(body.read())
    return [Chunk(item["name"], item["size"]) for item in listing["chunks"]]


def _bucket_object(name: str) -> Any:
    """The boto3 `s3.Object` of `name` in upload storage (a bucket)."""
    storage: Any = upload_storage()
    return storage.bucket.Object(storage._normalize_name(name))  # under its location


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
    for (a boto3 `s3.Object`); its size is known from one HEAD at open, unless given."""

    def __init__(self, s3_object: Any, size: int | None = None) -> None:
        super().__init__()
        self.object = s3_object
        try:
            self.size: int = s3_object.content_length if size is None else size
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
        # The last file to start at or before the position (of thousands of chunks, say):
        # an empty one never, as the next file starts where it does.
        index = bisect.bisect_right(self.starts, self.position) - 1
        if index < 0 or self.position >= self.starts[index] + self.sizes[index]:
            return 0
        file, start = self.files[index], self.starts[index]
        file.seek(self.position - start)
        count = file.readinto(view[: min(len(view), start + self.sizes[index] - self.position)])
        self.position += count or 0
        return count or 0

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


class Bucket:
    """The calls to the bucket of a storage of django-storages' S3 backend that it has no
    method for: multipart uploads, listings with their times, deleting many at once."""

    def __init__(self, storage: Storage) -> None:
        self.storage = cast(Any, storage)  # storages.backends.s3.S3Storage
        self.client = self.storage.connection.meta.client
        self.name = self.storage.bucket_name

    def key(self, name: str) -> str:
        return self.storage._normalize_name(name)  # under the storage's location

    def name_of(self, key: str) -> str:
        return key.rsplit("/", 1)[-1]

    def start(self, name: str) -> str:
        reply = self.client.create_multipart_upload(Bucket=self.name, Key=self.key(name))
        return reply["UploadId"]

    def send_part(self, name: str, upload_id: str, number: int, body: BinaryIO, size: int) -> str:
        reply = self.client.upload_part(
            Bucket=self.name,
            Key=self.key(name),
            UploadId=upload_id,
            PartNumber=number,
            Body=body,
            ContentLength=size,
        )
        return reply["ETag"]

    def complete(self, name: str, upload_id: str, parts: list[list[Any]]) -> None:
        self.client.complete_multipart_upload(
            Bucket=self.name,
            Key=self.key(name),
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in parts]},
        )

    def abort(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.name, Key=key, UploadId=upload_id)
        except Exception as error:
            if not is_missing(error):
                raise

    def size(self, name: str) -> int:
        try:
            return self.client.head_object(Bucket=self.name, Key=self.key(name))["ContentLength"]
        except Exception as error:
            if is_missing(error):
                return -1
            raise

    def objects(self, prefix: str) -> Iterator[tuple[str, float]]:
        """(key, last modified as a timestamp) of the objects whose names start so."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name, Prefix=self.key(prefix)
        )
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"], item["LastModified"].timestamp()

    def uploads(self, prefix: str) -> Iterator[tuple[str, str]]:
        for upload_id, key, _ in self.uploads_started(prefix):
            yield upload_id, key

    def uploads_started(self, prefix: str) -> Iterator[tuple[str, str, float]]:
        """(upload id, key, when it started) of the unfinished uploads whose names start so."""
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.name, Prefix=self.key(prefix)
        )
        for page in pages:
            for item in page.get("Uploads", []):
                yield item["UploadId"], item["Key"], item["Initiated"].timestamp()

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), DELETE_BATCH):
            batch = [{"Key": key} for key in keys[start : start + DELETE_BATCH]]
            self.client.delete_objects(Bucket=self.name, Delete={"Objects": batch, "Quiet": True})


def raise_write_error(error: OSError) -> NoReturn:
    """Raise a failed write of an upload as the client should hear of it: a full disk is
    507 (the client may try again later); anything else stays the server's own error."""
    if faults.is_disk_full(error):
        raise InsufficientStorage(
            "the server's disk is full: what was sent now is not kept; try again later",
            retry_after=RETRY_AFTER_FULL_DISK_S,
        ) from error
    raise error
