"""Export files, written as pieces `<job>.<n>.<run>.csv`; the job's checkpoint lists them with
how much of each is committed, and a download reads exactly that.

Nearly every export is one piece. A run that follows a lost run starts a piece of its own:
the lost run's worker may only be frozen, and when it wakes up whatever it still writes goes
past the committed end of a piece that nobody extends or reads any further.

Export storage is Django's `STORAGES["exports"]`: a local directory (the embedded default,
or a disk every process shares), or a bucket. On disk a piece is a file, committed as far as
it was flushed. In a bucket a piece is a multipart upload: what a run writes is spooled on
its own disk and sent as a part once there is PART_BYTES of it (S3 takes no smaller part but
the last), so only what is in parts is committed; the last part completes the upload.
"""

import io
import os
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Container
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from uuid import UUID

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages

from collect.files import Bucket, JoinedFile, is_missing, object_open

# A piece, as the checkpoint keeps it: [file name, committed bytes] on disk, and in a bucket
# [object name, committed bytes, multipart upload id, [[part number, ETag], ...]].
Pieces = list[list[Any]]
PART_BYTES = 8 << 20  # S3's least part is 5 MiB
# A local piece is handed to the disk, and dropped from the page cache once written back,
# every this many bytes (see LocalWriter.write).
DROP_BEHIND_BYTES = 8 << 20


def export_bucket() -> Bucket:
    """The bucket of export storage, when it is one."""
    return Bucket(storages["exports"])


class PiecesLost(Exception):
    """The committed pieces cannot be had any more: the export must start again."""


class ExportWriter(Protocol):
    pieces: Pieces  # committed, as the checkpoint keeps them

    def write(self, data: bytes) -> object: ...

    def commit(self, *, final: bool) -> bool:
        """Commit what was written if it is time to (always when `final`); whether all of
        it is committed now."""
        ...

    def close(self) -> None: ...


def exports_are_local() -> bool:
    return isinstance(storages["exports"], FileSystemStorage)


def export_writer(job_id: UUID, pieces: Pieces, *, after_lost_run: bool) -> ExportWriter:
    """Go on writing the export after its committed bytes; in a new piece if there is none
    yet or a lost run's worker may still write to the last one. Raises PiecesLost."""
    if exports_are_local():
        return LocalWriter(job_id, pieces, after_lost_run=after_lost_run)
    return BucketWriter(job_id, pieces, after_lost_run=after_lost_run)


def export_open(pieces: Pieces) -> BinaryIO:
    """The committed bytes of the pieces, as one file; FileNotFoundError once expired."""
    files: list[tuple[io.RawIOBase | io.BufferedIOBase, int]] = []
    try:
        for name, size, *_ in pieces:
            files.append((_piece_open(name), size))
    except Exception:
        for file, _ in files:
            file.close()
        raise
    return io.BufferedReader(JoinedFile(files), PART_BYTES)


def _piece_open(name: str) -> io.RawIOBase | io.BufferedIOBase:
    if exports_are_local():
        return open(piece_path(name), "rb")  # closed with the joined file
    return object_open(storages["exports"], name)


def export_files_delete(job_id: UUID, *, keep: Container[str] = ()) -> None:
    """Delete the export's files, all of them or all but those named in `keep` (in a bucket
    its unfinished uploads too, all but those of `keep`'s ids)."""
    if exports_are_local():
        for path in export_dir().glob(f"{job_id}.*"):
            if path.name not in keep:
                path.unlink(missing_ok=True)
        return
    bucket = export_bucket()
    for upload_id, key in bucket.uploads(f"{job_id}."):
        if upload_id not in keep:
            bucket.abort(key, upload_id)
    bucket.delete(
        [key for key, _ in bucket.objects(f"{job_id}.") if bucket.name_of(key) not in keep]
    )


def expired_files_delete(*, older_than: float) -> None:
    """Delete the files of exports last written more than `older_than` seconds ago: all of
    an export's pieces at once, when the newest of them is that old."""
    cutoff = time.time() - older_than
    newest: dict[str, float] = defaultdict(float)
    files: dict[str, list[Any]] = defaultdict(list)
    if exports_are_local():
        for path in export_dir().iterdir():
            job = path.name.split(".", 1)[0]
            files[job].append(path)
            newest[job] = max(newest[job], path.stat().st_mtime)
        for job, paths in files.items():
            if newest[job] < cutoff:
                for path in paths:
                    path.unlink(missing_ok=True)
        return
    bucket = export_bucket()
    for key, modified in bucket.objects(""):
        job = bucket.name_of(key).split(".", 1)[0]
        files[job].append(key)
        newest[job] = max(newest[job], modified)
    bucket.delete([key for job, keys in files.items() if newest[job] < cutoff for key in keys])
    for upload_id, key, started in bucket.uploads_started(""):
        if started < cutoff:  # an upload nobody has completed in all that time
            bucket.abort(key, upload_id)


def export_dir() -> Path:
    directory = Path(storages["exports"].location)  # type: ignore[attr-defined]
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def piece_name(job_id: UUID, number: int) -> str:
    return f"{job_id}.{number}.{uuid.uuid4().hex[:8]}.csv"


def piece_path(name: str) -> Path:
    path = (export_dir() / name).resolve()
    if path.parent != export_dir().resolve():
        raise ValueError(f"not an export file name: {name!r}")
    return path


class LocalWriter:
    """Pieces as files on disk: whatever is flushed is committed."""

    def __init__(self, job_id: UUID, pieces: Pieces, *, after_lost_run: bool) -> None:
        self.pieces = pieces
        # Files no checkpoint names are lost runs' (a worker still writing to one writes to
        # a file nobody has once it is gone).
        export_files_delete(job_id, keep={name for name, *_ in pieces})
        if not pieces or after_lost_run:
            self._give_up_last_piece()
            pieces.append([piece_name(job_id, len(pieces)), 0])
        name, size = pieces[-1]
        path = piece_path(name)
        self.file = open(path, "r+b" if path.exists() else "w+b")  # noqa: SIM115 - kept open for the run
        self.file.truncate(size)  # whatever was written after the last checkpoint goes
        self.file.seek(size)
        self.unhanded = 0  # bytes written since the page cache was last told to drop them

    def _give_up_last_piece(self) -> None:
        """Keep only the committed bytes of the last piece, so that runs lost one after the
        other (a disk that stays full) do not fill the disk with what they never committed.
        An empty one goes: a worker still writing to it writes to a file nobody has."""
        if not self.pieces:
            return
        name, size = self.pieces[-1]
        path = piece_path(name)
        if size == 0:
            self.pieces.pop()
            path.unlink(missing_ok=True)
        elif path.exists():
            os.truncate(path, size)

    def write(self, data: bytes) -> object:
        written = self.file.write(data)
        self.unhanded += written
        if self.unhanded >= DROP_BEHIND_BYTES:
            self._drop_behind()
        return written

    def _drop_behind(self) -> None:
        """Start writing back what is in the page cache, and drop what is written back by
        now. An export is written once and read once, later: kept in the cache, it pushes the
        database's pages out, and on a virtual machine whose free memory goes back to its host
        every page new to the cache costs a write more than the copy (3.4 ms a MiB against
        0.3 for pages dropped a moment before; a 264 MB export ran at 0.65 of psql's instead
        of 0.95 by its fifth). What the disk has taken goes a window later, the rest stays
        cached until it has."""
        self.file.flush()
        if hasattr(os, "posix_fadvise"):  # not on macOS or Windows
            # For dirty pages Linux starts their writeback, clean ones it drops.
            os.posix_fadvise(self.file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        self.unhanded = 0

    def commit(self, *, final: bool) -> bool:
        self.file.flush()
        self.pieces[-1][1] = self.file.tell()
        return True

    def close(self) -> None:
        self.file.close()


class BucketWriter:
    """Pieces as multipart uploads: only what is in parts is committed (see the module)."""

    def __init__(self, job_id: UUID, pieces: Pieces, *, after_lost_run: bool) -> None:
        self.bucket = export_bucket()
        self.pieces = pieces
        names_and_uploads = {piece[0] for piece in pieces} | {piece[2] for piece in pieces}
        export_files_delete(job_id, keep=names_and_uploads)
        if not pieces or after_lost_run:
            self._give_up_last_piece()
            name = piece_name(job_id, len(pieces))
            pieces.append([name, 0, self.bucket.start(name), []])
        self.spool = tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR)  # noqa: SIM115

    def _give_up_last_piece(self) -> None:
        """Complete the last piece's upload with its committed parts, so that it holds just
        them; an empty one goes. Raises PiecesLost if it cannot be had."""
        if not self.pieces:
            return
        name, size, upload_id, parts = self.pieces[-1]
        if not parts:
            self.bucket.abort(self.bucket.key(name), upload_id)
            self.pieces.pop()
            return
        try:
            self.bucket.complete(name, upload_id, parts)
        except Exception as error:
            # Completed already by a run whose commit then failed: it may hold more than the
            # committed bytes, which are read and no more.
            if not is_missing(error) or self.bucket.size(name) < size:
                raise PiecesLost(f"the export's piece {name} is gone") from error

    def write(self, data: bytes) -> object:
        return self.spool.write(data)

    def commit(self, *, final: bool) -> bool:
        spooled = self.spool.tell()
        if spooled and (final or spooled >= PART_BYTES):
            name, size, upload_id, parts = self.pieces[-1]
            self.spool.seek(0)
            etag = self.bucket.send_part(name, upload_id, len(parts) + 1, self.spool, spooled)
            parts.append([len(parts) + 1, etag])
            self.pieces[-1][1] = size + spooled
            self.spool.seek(0)
            self.spool.truncate()
        if final:
            name, _, upload_id, parts = self.pieces[-1]
            if parts:
                self.bucket.complete(name, upload_id, parts)
            else:  # a piece of nothing (a run after a lost one found all written)
                self.bucket.abort(self.bucket.key(name), upload_id)
                self.pieces.pop()
        return self.spool.tell() == 0

    def close(self) -> None:
        self.spool.close()
