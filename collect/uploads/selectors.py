"""Finding an upload as its owner sees it."""

import uuid

from django.contrib.auth.models import User

from collect.errors import Gone, NotFound
from collect.files import Chunk
from collect.uploads.models import Upload, UploadChunk

GONE = (Upload.State.TERMINATED, Upload.State.EXPIRED, Upload.State.JOINED)


def upload_visible_to(owner: User, upload_id: str) -> Upload:
    """The owner's upload; anyone else's is as absent as a missing one (404), and one that
    was terminated or expired is gone (410)."""
    try:
        upload = Upload.objects.get(pk=uuid.UUID(str(upload_id)), owner=owner)
    except (ValueError, Upload.DoesNotExist):
        raise NotFound(f"no upload {upload_id}") from None
    if upload.state in GONE:
        raise Gone(f"the upload was {upload.state}")
    return upload


def upload_chunks(upload: Upload) -> list[Chunk]:
    """In a bucket, the upload's bytes so far as its chunk objects, in order; a final
    upload's are its partial uploads' one after the other."""
    if upload.concat == Upload.Concat.FINAL:
        parts = Upload.objects.in_bulk([uuid.UUID(part) for part in upload.parts])
        return [chunk for part in upload.parts for chunk in upload_chunks(parts[uuid.UUID(part)])]
    rows = UploadChunk.objects.filter(upload=upload, offset__lt=upload.offset).order_by("offset")
    return [Chunk(row.name, row.size) for row in rows]
