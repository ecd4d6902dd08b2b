"""Export files: written aside as `<job>.csv.part`, renamed to `<job>.csv` when complete."""

import time
from pathlib import Path

from django.conf import settings


def export_dir() -> Path:
    directory = settings.DATA_DIR / "exports"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def partial_path(job_id) -> Path:
    return export_dir() / f"{job_id}.csv.part"


def final_path(job_id) -> Path:
    return export_dir() / f"{job_id}.csv"


def export_files_delete(job_id) -> None:
    partial_path(job_id).unlink(missing_ok=True)
    final_path(job_id).unlink(missing_ok=True)
    for copy in export_dir().glob(f"{job_id}.csv.part.*"):  # a takeover's, cut short
        copy.unlink(missing_ok=True)


def expired_files_delete(*, older_than: float) -> None:
    """Delete finished export files last written more than `older_than` seconds ago."""
    cutoff = time.time() - older_than
    for path in export_dir().glob("*.csv"):
        if path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
