"""Finding an upload as its owner sees it."""

import uuid

from django.contrib.auth.models import User

from collect.errors import Gone, NotFound
from collect.uploads.models import Upload

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
