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
from typing import Any, BinaryIO
from uuid import UUID

from django.conf import settings

from collect.files import JoinedFile

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
    files: list[tuple[io.RawIOBase | io.BufferedIOBase, int]] = []
    try:
        for name, size in pieces:
            files.append((open(piece_path(name), "rb"), size))  # noqa: SIM115 - closed with it
    except OSError:
        for file, _ in files:
            file.close()
        raise
    return io.BufferedReader(JoinedFile(files))


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
