"""In a bucket, the one request that writes a chunk of an upload, whichever web process it
reaches: a claim on the Upload row (`writer`, `writer_until`), taken by a conditional UPDATE
and renewed while the chunk arrives and is sent. A claim that runs out (its process froze)
may be taken by another request; the offset then moves only for the request that holds the
claim, and only from where its chunk started (the fence against the frozen one).
"""

import time
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from collect.errors import Locked
from collect.files import Chunk, chunk_delete
from collect.uploads.models import Upload, UploadChunk


def _lease() -> timedelta:
    return timedelta(seconds=settings.COLLECT_LEASE_SECONDS)


class Claim:
    """This request's claim on writing `upload`; a context manager that gives it up."""

    def __init__(self, upload: Upload) -> None:
        self.upload_id = upload.pk
        self.token = uuid.uuid4()
        self.renewed = time.monotonic()
        now = timezone.now()
        free = Q(writer__isnull=True) | Q(writer_until__lt=now)
        taken = (
            Upload.objects.filter(free, pk=upload.pk, state=Upload.State.RECEIVING)
            .update(writer=self.token, writer_until=now + _lease())
        )  # fmt: skip
        if not taken:
            raise Locked("another request is writing to this upload")

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *_: object) -> None:
        self._mine().update(writer=None, writer_until=None)

    def keep(self, *_: object) -> None:
        """Renew the claim if a third of its time has gone; Locked if another request has
        taken it meanwhile (this one was too slow: what it has is not kept)."""
        if time.monotonic() - self.renewed < settings.COLLECT_LEASE_SECONDS / 3:
            return
        if not self._mine().update(writer_until=timezone.now() + _lease()):
            raise Locked("another request took this upload over")
        self.renewed = time.monotonic()

    def commit(self, offset: int, chunk: Chunk | None, expires_at: datetime) -> bool:
        """Move the offset past `chunk`, stored, and name it as the upload's: only if the
        claim is still this request's and the offset where the chunk started. A chunk that
        loses is deleted (no row names it, so it would never count anyway)."""
        size = chunk.size if chunk else 0
        with transaction.atomic():
            moved = (
                self._mine()
                .filter(state=Upload.State.RECEIVING, offset=offset)
                .update(offset=offset + size, expires_at=expires_at)
            )
            if moved and chunk:
                UploadChunk.objects.create(
                    upload_id=self.upload_id, offset=offset, size=size, name=chunk.name
                )
        if not moved and chunk:
            chunk_delete(chunk.name)
        return bool(moved)

    def _mine(self) -> QuerySet[Upload]:
        return Upload.objects.filter(pk=self.upload_id, writer=self.token)


def chunk_name(upload: Upload, offset: int, claim: Claim) -> str:
    """Where a chunk goes: under its upload's prefix, by its offset, and by the claim, so
    that a frozen request waking up never overwrites the chunk that another one stored."""
    return f"{chunk_prefix(upload)}{offset:020d}.{claim.token.hex}"


def chunk_prefix(upload: Upload) -> str:
    return f"tus/{upload.pk}/"
