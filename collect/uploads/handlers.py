import contextlib
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
    Whatever stops it, the temporary file is closed and deleted at once."""

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
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
            return super().file_complete(file_size)  # flushes what is still buffered
        except OSError as error:
            self._discard()
            raise_write_error(error)

    def _discard(self) -> None:
        # A temporary file: closing deletes it, even when its buffer cannot be written.
        with contextlib.suppress(OSError):
            self.file.close()
