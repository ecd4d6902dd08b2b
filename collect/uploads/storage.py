"""Uploaded files live under UPLOAD_DIR by name; a job keeps the name, never a full path,
so every process that mounts the same storage finds the same file."""

import os
import shutil
from pathlib import Path
from typing import BinaryIO

from django.conf import settings


def upload_path(name: str) -> Path:
    path = (settings.UPLOAD_DIR / name).resolve()
    if path.parent != settings.UPLOAD_DIR.resolve():
        raise ValueError(f"not an upload name: {name!r}")
    return path


def upload_store(source: Path, name: str) -> str:
    """Move a finished temporary file into storage under `name`."""
    target = upload_path(name)
    try:
        os.replace(source, target)  # same file system: a rename, no copy
    except OSError:
        shutil.move(source, target)
    return name


def upload_open(name: str) -> BinaryIO:
    return open(upload_path(name), "rb")


def upload_size(name: str) -> int:
    return upload_path(name).stat().st_size


def upload_delete(name: str) -> None:
    upload_path(name).unlink(missing_ok=True)
