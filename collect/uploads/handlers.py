import contextlib
import hashlib
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler

from collect.errors import TooLarge
from collect.files import raise_write_error


def too_large() -> TooLarge:
    limit = settings.COLLECT_MAX_UPLOAD_BYTES
    return TooLarge(f"the file is larger than the limit of {limit} bytes", limit=limit)


class SizeLimitedUploadHandler(TemporaryFileUploadHandler):
    """Streams an upload to a temporary file and stops it as soon as it passes the limit.
    Whatever stops it, the temporary file is closed and deleted at once. The file's SHA-256
    is computed on the way (the same file twice is refused), as `file.sha256`: reading the
    file again afterwards would cost the request a second pass over it."""

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0
        self.digest = hashlib.sha256()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        self.digest.update(raw_data)
        if self.received > settings.COLLECT_MAX_UPLOAD_BYTES:
            self._discard()
            raise too_large()
        try:
            return super().receive_data_chunk(raw_data, start)
        except OSError as error:  # a full disk, say
            self._discard()
            raise_write_error(error)

    # Quoted: UploadedFile is generic in Django's stubs only.
    def file_complete(self, file_size: int) -> "UploadedFile[bytes] | None":
        try:
            uploaded = super().file_complete(file_size)  # flushes what is still buffered
        except OSError as error:
            self._discard()
            raise_write_error(error)
        if uploaded is not None:
            uploaded.sha256 = self.digest.hexdigest()  # type: ignore[attr-defined]
        return uploaded

    def _discard(self) -> None:
        # A temporary file: closing deletes it, even when its buffer cannot be written.
        with contextlib.suppress(OSError):
            self.file.close()
