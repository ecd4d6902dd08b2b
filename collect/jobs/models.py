import uuid

from django.conf import settings
from django.db import models

from collect.jobs.states import Kind, Status


class Job(models.Model):
    """A long-running import or export. The row is the truth; workers only act on it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.PROTECT)
    # What to do: source file, options, export range; fixed when the job is created.
    params = models.JSONField(default=dict)
    # Where to continue: written in the same transaction as the batch it describes.
    checkpoint = models.JSONField(default=dict)

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)  # when a worker was last woken

    rows_done = models.BigIntegerField(default=0)
    rows_rejected = models.BigIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    bytes_total = models.BigIntegerField(default=0)
    run_seconds = models.FloatField(default=0.0)  # time spent running, pauses excluded

    error = models.TextField(null=True, blank=True)  # noqa: DJ001 - null is "no error" in the API
    terminated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    termination_reason = models.CharField(max_length=200, blank=True, default="")

    # The worker that owns the job while it runs, and until when its claim holds; its
    # database session, which a takeover ends (collect.db.sessions).
    worker = models.CharField(max_length=200, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    worker_session = models.CharField(max_length=100, blank=True, default="")

    # Runs started since the job last committed a batch, how many of them crashed (faults of
    # the machinery not counted) and how the last one ended: too many crashes in a row fail
    # the job. A job queued again after a fault waits until `run_after`, longer each time.
    attempts = models.PositiveIntegerField(default=0)
    crashes = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    run_after = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="job_owner_recent"),
            models.Index(fields=["status"], name="job_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=Status.values), name="job_status_valid"
            ),
            models.CheckConstraint(condition=models.Q(kind__in=Kind.values), name="job_kind_valid"),
            models.CheckConstraint(
                condition=models.Q(status=Status.PAUSED) | models.Q(paused_at__isnull=True),
                name="job_paused_at_only_when_paused",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.status})"
