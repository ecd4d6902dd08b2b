from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler

from collect.errors import TooLarge


def too_large() -> TooLarge:
    limit = settings.COLLECT_MAX_UPLOAD_BYTES
    return TooLarge(f"the file is larger than the limit of {limit} bytes", limit=limit)


class SizeLimitedUploadHandler(TemporaryFileUploadHandler):
    """Streams an upload to a temporary file and stops it as soon as it passes the limit."""

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.received += len(raw_data)
        if self.received > settings.COLLECT_MAX_UPLOAD_BYTES:
            self.file.close()
            raise too_large()
        return super().receive_data_chunk(raw_data, start)
