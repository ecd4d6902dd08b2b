import uuid

from django.conf import settings
from django.db import models

from collect.datasets import DEFAULT_DATASET, NAME_MAX_CHARS
from collect.imports.choices import OnError


class Upload(models.Model):
    """A resumable upload: its state is here, its bytes in upload storage under `file_name`,
    so any web process can take the next chunk."""

    class State(models.TextChoices):
        RECEIVING = "receiving"
        COMPLETE = "complete"
        FAILED = "failed"  # complete, but its import could not start: see `error`
        TERMINATED = "terminated"
        EXPIRED = "expired"
        JOINED = "joined"  # a partial upload whose bytes are now in a final upload

    class Concat(models.TextChoices):
        NONE = ""
        PARTIAL = "partial"  # a piece of a later final upload; starts no import itself
        FINAL = "final"  # the pieces in `parts`, joined

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    state = models.CharField(max_length=10, choices=State.choices, default=State.RECEIVING)
    length = models.BigIntegerField(null=True, blank=True)  # null until declared (deferred)
    offset = models.BigIntegerField(default=0)
    # The client's Upload-Metadata header as sent, given back on HEAD, and what Collect
    # takes from it.
    metadata = models.TextField(blank=True, default="")
    filename = models.CharField(max_length=255, blank=True, default="")
    dataset = models.CharField(max_length=NAME_MAX_CHARS, default=DEFAULT_DATASET)
    timestamp_column = models.CharField(max_length=200, blank=True, default="")
    on_error = models.CharField(max_length=10, choices=OnError.choices, default=OnError.ABORT)
    max_rejects = models.PositiveBigIntegerField(null=True, blank=True)
    concat = models.CharField(max_length=10, choices=Concat.choices, blank=True, default="")
    parts = models.JSONField(default=list, blank=True)  # ids of a final upload's partials
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    job = models.OneToOneField(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="upload"
    )
    error = models.TextField(blank=True, default="")
    # The file's SHA-256 as the client declared it (metadata `sha256`), and whether to import
    # bytes that the dataset already has (`force`): see import_check_duplicate.
    sha256 = models.CharField(max_length=64, blank=True, default="")
    force = models.BooleanField(default=False)
    # Whether the bytes so far hold a header that the import accepts (checked once).
    header_checked = models.BooleanField(default=False)
    # In a bucket: the request writing a chunk now, and until when its claim holds unless
    # renewed (collect/uploads/writers.py). On local disk a file lock does this.
    writer = models.UUIDField(null=True, blank=True)
    writer_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "expires_at"], name="upload_expiry")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(length__isnull=True) | models.Q(offset__lte=models.F("length")),
                name="upload_offset_within_length",
            ),
        ]

    def __str__(self) -> str:
        return f"upload {self.id} ({self.state}, {self.offset}/{self.length})"

    @property
    def file_name(self) -> str:
        return f"{self.id}.upload"


class UploadChunk(models.Model):
    """In a bucket: a chunk of an upload, an object of its own (`name`), stored whole before
    the upload's offset moved past it, in the same transaction as that move. So an upload's
    chunks chain from 0 to its offset, and an object that no row names never counts."""

    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="chunks")
    offset = models.BigIntegerField()
    size = models.BigIntegerField()
    name = models.CharField(max_length=200)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["upload", "offset"], name="upload_chunk_offset"),
            models.CheckConstraint(condition=models.Q(size__gt=0), name="upload_chunk_size"),
        ]

    def __str__(self) -> str:
        return f"chunk of {self.size} bytes at {self.offset} of upload {self.upload_id}"
