"""Where Collect keeps the files it shares between processes: uploads live under UPLOAD_DIR
by name. A job keeps the name, never a full path, so every process that mounts the same
storage finds the same file. A leaf: it imports nothing of Collect's but errors and faults."""

import io
import os
import shutil
from pathlib import Path
from typing import NoReturn

from django.conf import settings

from collect import faults
from collect.errors import InsufficientStorage

RETRY_AFTER_FULL_DISK_S = 30


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


def upload_open(name: str) -> io.BufferedReader:
    return open(upload_path(name), "rb")


def upload_delete(name: str) -> None:
    upload_path(name).unlink(missing_ok=True)


def raise_write_error(error: OSError) -> NoReturn:
    """Raise a failed write of an upload as the client should hear of it: a full disk is
    507 (the client may try again later); anything else stays the server's own error."""
    if faults.is_disk_full(error):
        raise InsufficientStorage(
            "the server's disk is full: what was sent now is not kept; try again later",
            retry_after=RETRY_AFTER_FULL_DISK_S,
        ) from error
    raise error
