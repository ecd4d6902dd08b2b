"""Export files, written as pieces `<job>.<n>.<run>.csv`; the job's checkpoint lists them with
how much of each is committed, and a download reads exactly that.

Nearly every export is one piece. A run that follows a lost run starts a piece of its own:
the lost run's worker may only be frozen, and when it wakes up whatever it still writes goes
past the committed end of a piece that nobody extends or reads any further.
"""

import io
import time
import uuid
from collections import defaultdict
from collections.abc import Container
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from uuid import UUID

from django.conf import settings

from collect.files import SizedRawFile

if TYPE_CHECKING:  # a protocol of typeshed's only
    from _typeshed import WriteableBuffer

Pieces = list[list[Any]]  # [[file name, committed bytes], ...], in order


def export_dir() -> Path:
    directory = settings.DATA_DIR / "exports"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def piece_name(job_id: UUID, number: int) -> str:
    return f"{job_id}.{number}.{uuid.uuid4().hex[:8]}.csv"


def piece_path(name: str) -> Path:
    path = (export_dir() / name).resolve()
    if path.parent != export_dir().resolve():
        raise ValueError(f"not an export file name: {name!r}")
    return path


def export_open(pieces: Pieces) -> BinaryIO:
    """The committed bytes of the pieces, as one file; FileNotFoundError once expired."""
    return io.BufferedReader(PiecesFile([(piece_path(name), size) for name, size in pieces]))


def export_files_delete(job_id: UUID, *, keep: Container[str] = ()) -> None:
    """Delete the export's files, all of them or all but those named in `keep`."""
    for path in export_dir().glob(f"{job_id}.*"):
        if path.name not in keep:
            path.unlink(missing_ok=True)


def expired_files_delete(*, older_than: float) -> None:
    """Delete the files of exports last written more than `older_than` seconds ago: all of
    an export's pieces at once, when the newest of them is that old."""
    cutoff = time.time() - older_than
    newest: dict[str, float] = defaultdict(float)
    files: dict[str, list[Path]] = defaultdict(list)
    for path in export_dir().iterdir():
        job = path.name.split(".", 1)[0]
        files[job].append(path)
        newest[job] = max(newest[job], path.stat().st_mtime)
    for job, paths in files.items():
        if newest[job] < cutoff:
            for path in paths:
                path.unlink(missing_ok=True)


class PiecesFile(SizedRawFile):
    """Files read one after the other, each only up to its committed size; seekable, so a
    server can send it as a file (waitress frees its thread while a slow client reads)."""

    def __init__(self, pieces: list[tuple[Path, int]]) -> None:
        super().__init__()
        self.files: list[io.BufferedReader] = []
        try:
            for path, _ in pieces:
                self.files.append(open(path, "rb"))  # noqa: SIM115 - closed with this file
        except OSError:
            self.close()
            raise
        self.starts: list[int] = []
        offset = 0
        for _, size in pieces:
            self.starts.append(offset)
            offset += size
        self.sizes = [size for _, size in pieces]
        self.size = offset
        self.position = 0

    def readinto(self, buffer: "WriteableBuffer") -> int:
        view = memoryview(buffer)
        for file, start, size in zip(self.files, self.starts, self.sizes, strict=True):
            if start <= self.position < start + size:
                wanted = min(len(view), start + size - self.position)
                file.seek(self.position - start)
                count = file.readinto(view[:wanted])
                self.position += count
                return count
        return 0

    def close(self) -> None:
        for file in self.files:
            file.close()
        super().close()
