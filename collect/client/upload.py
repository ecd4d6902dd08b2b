"""`collect upload`: a resumable upload through tus (tuspy, the protocol's Python client).

The URL of each upload is remembered under the file's fingerprint, the server and the
dataset, so that running the same command again, after Ctrl-C or a dropped connection,
continues from the server's offset instead of starting over.
"""

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError, TusUploadFailed
from tusclient.fingerprint.fingerprint import Fingerprint
from tusclient.storage.interface import Storage
from tusclient.uploader import Uploader

from collect.client.http import Api, ClientError

CHUNK_BYTES = 8 * 1024 * 1024
RETRIES = 5  # a dropped connection is retried this many times, from the server's offset
RETRY_DELAY_S = 2.0
# The server's offset is elsewhere (another client went on, or a chunk half-arrived), or
# another request holds the upload: ask where it stands and go on from there.
RESYNC_STATUSES = (409, 423)


class UrlStore(Storage):
    """Upload URLs by key, in a small JSON file of the user's state directory."""

    def __init__(self, path: Path | None = None) -> None:
        state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
        self.path = path or state / "collect" / "uploads.json"

    def get_item(self, key: str) -> str | None:
        return self._read().get(key)

    def set_item(self, key: str, value: str) -> None:
        self._write({**self._read(), key: value})

    def remove_item(self, key: str) -> None:
        items = self._read()
        items.pop(key, None)
        self._write(items)

    def _read(self) -> dict[str, str]:
        try:
            return json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _write(self, items: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(items, indent=1))
        temporary.replace(self.path)


class UploadKey(Fingerprint):
    """tuspy's fingerprint (size and the first 64 KiB) plus where the file goes: the same
    file sent to another server or dataset is another upload."""

    def __init__(self, server: str, dataset: str) -> None:
        self.destination = f"{server}|{dataset}"

    def get_fingerprint(self, fs: IO[bytes]) -> str:
        return f"{self.destination}|{super().get_fingerprint(fs)}"


def upload_file(
    api: Api,
    path: Path,
    *,
    dataset: str,
    metadata: dict[str, str],
    on_progress: Callable[[int, int], None],
    notify: Callable[[str], None] = print,
    chunk_bytes: int = CHUNK_BYTES,
    store: Storage | None = None,
) -> str:
    """Upload (or finish uploading) `path`; returns the id of the import job it started."""
    if not path.is_file():
        raise ClientError(f"no such file: {path}")
    store = store or UrlStore()
    key = UploadKey(api.url, dataset)
    uploader = _uploader(api, path, dataset, metadata, chunk_bytes, store, key)
    size = path.stat().st_size
    if uploader.url is None:  # a new upload: say which bytes, so the server can spot twins
        uploader.metadata["sha256"] = file_sha256(path)
    on_progress(uploader.offset, size)
    failures = 0
    while uploader.url is None or uploader.offset < size:
        try:
            uploader.upload_chunk()
            failures = 0
        except (TusUploadFailed, TusCommunicationError) as error:
            status = getattr(error, "status_code", None)
            if twin := _twin(error):
                # The same bytes are in the dataset already, or on their way: attach to
                # that import rather than making a second one.
                with open(path, "rb") as stream:
                    store.remove_item(key.get_fingerprint(stream))
                notify(twin["detail"])
                return str(twin["task_id"])
            if status is not None and status < 500 and status not in RESYNC_STATUSES:
                raise ClientError(_refusal(error)) from None
            failures += 1
            if failures > RETRIES:
                raise ClientError(
                    f"lost the connection to {api.url} at {_percent(uploader.offset, size)}; "
                    "run the same command again to resume"
                ) from None
            if status not in RESYNC_STATUSES:
                notify(f"the connection broke ({error}); trying again")
                time.sleep(RETRY_DELAY_S)
            uploader.offset = _server_offset(uploader)
        on_progress(uploader.offset, size)
    with open(path, "rb") as stream:  # done: the same command again is a new upload
        store.remove_item(key.get_fingerprint(stream))
    return _task_id(api, uploader.url)


def _uploader(
    api: Api,
    path: Path,
    dataset: str,
    metadata: dict[str, str],
    chunk_bytes: int,
    store: Storage,
    key: UploadKey,
) -> Uploader:
    client = TusClient(api.endpoint("uploads/"), headers=api.headers)
    options = {
        "file_path": str(path),
        "chunk_size": chunk_bytes,
        "metadata": {"filename": path.name, "dataset": dataset, **metadata},
        "store_url": True,
        "url_storage": store,
        "fingerprinter": key,
        "upload_checksum": True,
    }
    try:
        return client.uploader(**options)
    except TusCommunicationError as error:
        if error.status_code is None:
            raise ClientError(f"cannot reach Collect at {api.url}") from None
        if error.status_code not in (404, 410):
            raise ClientError(_refusal(error)) from None
        # The remembered upload is gone (expired or terminated): start anew.
        with open(path, "rb") as stream:
            store.remove_item(key.get_fingerprint(stream))
        try:
            return client.uploader(**options)
        except TusCommunicationError as error:
            raise ClientError(_refusal(error)) from None


def file_sha256(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _twin(error: TusCommunicationError) -> dict[str, Any] | None:
    """The server's 409 for bytes it already has from an import (its body names the job),
    as opposed to a 409 for an offset that moved."""
    if getattr(error, "status_code", None) != 409:
        return None
    try:
        body = json.loads(getattr(error, "response_content", None) or b"")
    except ValueError:
        return None
    return body if isinstance(body, dict) and body.get("task_id") else None


def _server_offset(uploader: Uploader) -> int:
    try:
        return uploader.get_offset()
    except TusCommunicationError:
        return uploader.offset  # still unreachable: the next attempt will tell


def _task_id(api: Api, upload_url: str) -> str:
    """The import job the completed upload started, as the server's HEAD names it."""
    response = api.session.head(upload_url, headers={"Tus-Resumable": "1.0.0"}, timeout=60)
    if response.headers.get("Collect-Error"):
        raise ClientError(f"the import cannot start: {response.headers['Collect-Error']}")
    task_id = response.headers.get("Collect-Task-Id")
    if not task_id:
        raise ClientError(f"the upload finished but started no import ({response.status_code})")
    return task_id


def _refusal(error: TusCommunicationError) -> str:
    if error.status_code in (401, 403):
        return "the server refused the token: check COLLECT_TOKEN"
    content = getattr(error, "response_content", None) or b""
    try:
        detail = json.loads(content).get("detail")
    except (ValueError, AttributeError):
        detail = None
    return detail or f"the upload was refused ({getattr(error, 'status_code', None)})"


def _percent(done: int, total: int) -> str:
    return f"{100 * done / total:.0f}%" if total else "0%"
