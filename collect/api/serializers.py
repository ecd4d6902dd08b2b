from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from collect.datasets import DEFAULT_DATASET, NAME_MAX_CHARS
from collect.datasets.models import Dataset
from collect.imports.choices import OnError
from collect.imports.models import RejectedRow
from collect.jobs import selectors
from collect.jobs.kinds import Description, kind_for
from collect.jobs.models import Job
from collect.jobs.states import FINAL, Kind, Status

# Jobs whose rows were all removed again: what they wrote is `rows_rolled_back`, not held.
ROLLED_BACK = frozenset({Status.TERMINATED, Status.FAILED})


class ProgressSerializer(serializers.Serializer[Job]):
    rows_done = serializers.SerializerMethodField(
        help_text="Rows the job holds: 0 once terminated or failed (see `rows_rolled_back`)."
    )
    rows_rejected = serializers.IntegerField()
    bytes_done = serializers.IntegerField()
    bytes_total = serializers.IntegerField()
    percent = serializers.SerializerMethodField()
    rows_per_s = serializers.SerializerMethodField()
    eta_s = serializers.SerializerMethodField()

    def get_percent(self, job: Job) -> float:
        if job.status == Status.COMPLETED:
            return 100.0
        done, total = _work(job)
        return round(100.0 * done / total, 1) if total else 0.0

    def get_rows_done(self, job: Job) -> int:
        return 0 if job.status in ROLLED_BACK else job.rows_done

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_rows_per_s(self, job: Job) -> float | None:
        """The mean rate of its runs; none while paused: nothing is moving."""
        if job.status == Status.PAUSED:
            return None
        return round(job.rows_done / job.run_seconds, 1) if job.run_seconds > 0 else 0.0

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_eta_s(self, job: Job) -> float | None:
        done, total = _work(job)
        if job.status in FINAL or job.status == Status.PAUSED:
            return None
        if job.run_seconds <= 0 or done <= 0:
            return None
        return round((total - done) / (done / job.run_seconds), 1)


def _described(job: Job) -> Description:
    return kind_for(job.kind).describe(job)


def _work(job: Job) -> tuple[int, int]:
    """How much of its work a job has done, and all of it (bytes of the file for an import,
    lines of the segments scanned for an export)."""
    description = _described(job)
    return description.work_done, description.work_total


class RetrySerializer(serializers.Serializer[Job]):
    last_error = serializers.CharField()
    attempts = serializers.IntegerField()
    retry_at = serializers.DateTimeField(source="run_after", allow_null=True)


class SummarySerializer(serializers.Serializer[Job]):
    """What a completed job did, in a few numbers; the fields of the other kind are absent."""

    rows_read = serializers.IntegerField(required=False, help_text="Import: records read.")
    rows_imported = serializers.IntegerField(required=False, help_text="Import: records kept.")
    rows_rejected = serializers.IntegerField(required=False, help_text="Import: records refused.")
    rows_exported = serializers.IntegerField(required=False, help_text="Export: rows written.")
    bytes = serializers.IntegerField(help_text="Import: of the file; export: of the CSV.")
    seconds = serializers.FloatField(help_text="Time spent running, pauses excluded.")


def job_summary(job: Job) -> dict[str, Any]:
    seconds = round(job.run_seconds, 1)
    if job.kind == Kind.EXPORT:
        return {"rows_exported": job.rows_done, "bytes": job.bytes_done, "seconds": seconds}
    return {
        "rows_read": job.rows_done + job.rows_rejected,
        "rows_imported": job.rows_done,
        "rows_rejected": job.rows_rejected,
        "bytes": job.bytes_total,
        "seconds": seconds,
    }


class JobSerializer(serializers.ModelSerializer[Job]):
    task_id = serializers.UUIDField(source="id", read_only=True)
    dataset = serializers.CharField(source="dataset.name")
    progress = ProgressSerializer(source="*")
    filename = serializers.SerializerMethodField()
    upload_id = serializers.SerializerMethodField()
    export_range = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()
    errors_url = serializers.SerializerMethodField()
    retry = serializers.SerializerMethodField()
    pause_expires_at = serializers.SerializerMethodField()
    rows_rolled_back = serializers.SerializerMethodField()
    queued_reason = serializers.SerializerMethodField()
    summary = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "task_id",
            "kind",
            "status",
            "dataset",
            "filename",
            "upload_id",
            "export_range",
            "created_at",
            "started_at",
            "finished_at",
            "paused_at",
            "pause_expires_at",
            "queued_reason",
            "progress",
            "rows_rolled_back",
            "summary",
            "error",
            "termination_reason",
            "download_url",
            "errors_url",
            "retry",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_filename(self, job: Job) -> str | None:
        return _described(job).filename

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_upload_id(self, job: Job) -> str | None:
        """The resumable upload the import's file came from."""
        return _described(job).upload_id

    @extend_schema_field(serializers.DictField(child=serializers.CharField(), allow_null=True))
    def get_export_range(self, job: Job) -> dict[str, str] | None:
        """An export's `from` and `to`, as asked for."""
        return _described(job).export_range

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_download_url(self, job: Job) -> str | None:
        if not _described(job).downloadable:
            return None
        return self._absolute(f"/api/tasks/{job.id}/download/")

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_errors_url(self, job: Job) -> str | None:
        if not _described(job).has_rejects:
            return None
        return self._absolute(f"/api/tasks/{job.id}/errors/")

    @extend_schema_field(RetrySerializer(allow_null=True))
    def get_retry(self, job: Job) -> dict[str, Any] | None:
        """Set while the job is being tried again after a run that was lost: why, how many
        runs in a row made no progress, and when the next one may start."""
        if not job.last_error or job.status not in (Status.QUEUED, Status.RUNNING):
            return None
        return RetrySerializer(job).data

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_pause_expires_at(self, job: Job) -> str | None:
        """When a paused job will be terminated unless resumed (COLLECT_PAUSE_TIMEOUT)."""
        expires = selectors.job_pause_expires_at(job)
        return serializers.DateTimeField().to_representation(expires) if expires else None

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_rows_rolled_back(self, job: Job) -> int | None:
        """A terminated or failed job's rows: written, then removed with the rest of it."""
        return job.rows_done if job.status in ROLLED_BACK else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_queued_reason(self, job: Job) -> str | None:
        """Why a queued job waits: its place in line, busy workers, or a retry's wait."""
        return selectors.job_queued_reason(job)

    @extend_schema_field(SummarySerializer(allow_null=True))
    def get_summary(self, job: Job) -> dict[str, Any] | None:
        return job_summary(job) if job.status == Status.COMPLETED else None

    def _absolute(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


# A dataset name as the store takes it: not blank, no control characters (dataset_check_name).
DATASET_NAME_PATTERN = r"^[^\x00-\x1f]*[^\s\x00-\x1f][^\x00-\x1f]*$"
DATASET_NAME = RegexValidator(
    DATASET_NAME_PATTERN,
    "a dataset name must not be blank nor hold control characters (NUL, newline, …)",
)


@extend_schema_field({"type": "string", "format": "date"})
class MomentField(serializers.CharField):
    """A bound of an export's range: a day, YYYY-MM-DD (documented as such, so that a
    schema-driven client sends days), or an ISO 8601 date-time, which is accepted too."""


# The forms and error bodies below read and describe plain dicts, never a model.
class UploadSerializer(serializers.Serializer[dict[str, Any]]):
    # Empty files get the import's own, clearer message.
    file = serializers.FileField(required=False, allow_empty_file=True, help_text="The CSV file.")
    uploaded_file = serializers.FileField(
        required=False,
        allow_empty_file=True,
        help_text="The brief's name for `file`; either is accepted.",
    )
    dataset = serializers.CharField(
        required=False,
        default=DEFAULT_DATASET,
        max_length=NAME_MAX_CHARS,
        validators=[DATASET_NAME],
    )
    timestamp_column = serializers.CharField(required=False, allow_blank=True, default="")
    on_error = serializers.ChoiceField(choices=OnError.choices, default=OnError.ABORT)
    max_rejects = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=2**62,
        default=None,
        help_text="With on_error=skip: fail the import once more rows than this are rejected.",
    )
    force = serializers.BooleanField(
        required=False,
        default=False,
        help_text=(
            "Import the file even if the same bytes were imported into this dataset already "
            "(or are being imported): without it, that answers 409 naming the job."
        ),
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        upload = attrs.get("file") or attrs.get("uploaded_file")
        if upload is None:
            raise serializers.ValidationError({"file": "attach the CSV file as `file`"})
        attrs["upload"] = upload
        return attrs


class ConflictSerializer(serializers.Serializer[dict[str, Any]]):
    detail = serializers.CharField()
    status = serializers.CharField()


class ErrorSerializer(serializers.Serializer[dict[str, Any]]):
    detail = serializers.CharField()


class ExportSerializer(serializers.Serializer[dict[str, Any]]):
    dataset = serializers.CharField(
        default=DEFAULT_DATASET, max_length=NAME_MAX_CHARS, validators=[DATASET_NAME]
    )
    # "from" is a Python keyword: the field is declared below under its JSON name.
    to = MomentField(help_text="Last day (YYYY-MM-DD, inclusive) or ISO date-time.")
    columns = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="A subset, in this order."
    )
    raw = serializers.BooleanField(
        default=False, help_text="Leave cells that look like formulas as they are."
    )


ExportSerializer._declared_fields["from"] = MomentField(
    help_text="First day (YYYY-MM-DD, inclusive, UTC) or ISO 8601 date-time."
)


class DatasetSerializer(serializers.ModelSerializer[Dataset]):
    """A dataset with the totals of its completed imports (`datasets_visible_to` annotates
    them); the days are those its records are dated by, in UTC."""

    owner = serializers.CharField(source="owner.username")
    columns = serializers.ListField(child=serializers.CharField())
    rows = serializers.IntegerField(help_text="Records of its completed imports.")
    imports = serializers.IntegerField(help_text="Its completed imports.")
    first_day = serializers.DateField(allow_null=True, help_text="Of its earliest record.")
    last_day = serializers.DateField(allow_null=True, help_text="Of its latest record.")

    class Meta:
        model = Dataset
        fields = [
            "name",
            "owner",
            "columns",
            "rows",
            "imports",
            "first_day",
            "last_day",
            "created_at",
        ]
        read_only_fields = fields


class RejectedRowSerializer(serializers.ModelSerializer[RejectedRow]):
    content = serializers.CharField(help_text="The record's first 200 characters, as written.")

    class Meta:
        model = RejectedRow
        fields = ["line", "reason", "content"]
        read_only_fields = fields


class DuplicateSerializer(serializers.Serializer[dict[str, Any]]):
    detail = serializers.CharField()
    task_id = serializers.UUIDField(help_text="The import that has these bytes.")
    status = serializers.ChoiceField(choices=Status.choices, help_text="Its state.")
