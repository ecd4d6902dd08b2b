"""The HTTP API: each view checks input, calls one service or selector, serializes the job."""

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import QuerySet
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status as http
from rest_framework.authentication import SessionAuthentication
from rest_framework.generics import ListAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BooleanField
from rest_framework.views import APIView

from collect.api.auth import signed_in
from collect.api.schema import duplicate_or_conflict, errors
from collect.api.serializers import (
    DATASET_NAME_PATTERN,
    ConflictSerializer,
    DatasetSerializer,
    ErrorSerializer,
    ExportSerializer,
    JobSerializer,
    RejectedRowSerializer,
    UploadSerializer,
)
from collect.datasets import DEFAULT_DATASET, NAME_MAX_CHARS
from collect.datasets.models import Dataset
from collect.datasets.selectors import dataset_visible_to, datasets_visible_to
from collect.errors import Conflict, Forbidden, Gone, InvalidInput
from collect.exports.job import export_pieces
from collect.exports.services import export_start
from collect.exports.storage import export_open
from collect.imports.models import RejectedRow
from collect.imports.rejects import rejects_csv
from collect.imports.services import import_start
from collect.jobs import selectors, services
from collect.jobs.models import Job
from collect.jobs.states import Kind, Status
from collect.uploads.handlers import too_large

MULTIPART_OVERHEAD = 64 * 1024  # the form fields and part headers around the file
CSV_FILE = OpenApiResponse(OpenApiTypes.STR, description="A CSV file.")
NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such task visible to you.")
NO_DATASET = OpenApiResponse(ErrorSerializer, description="No such dataset visible to you.")
CONFLICT = OpenApiResponse(ConflictSerializer, description="Not allowed in the current state.")
DAY = {"type": "string", "format": "date"}  # a day; ISO 8601 date-times are accepted too
TASK_ID = OpenApiParameter(
    "task_id", {"type": "string", "format": "uuid"}, "path", description="The task's id."
)
IMPORT_EXAMPLE = OpenApiExample(
    "An import, queued",
    response_only=True,
    status_codes=["202"],
    value={
        "task_id": "3f2a9c1e-5b7d-4e0a-9c3b-2d1f0e8a7b6c",
        "kind": "import",
        "status": "queued",
        "dataset": "responses",
        "filename": "responses.csv",
        "upload_id": None,
        "export_range": None,
        "created_at": "2026-06-01T09:30:00Z",
        "started_at": None,
        "finished_at": None,
        "paused_at": None,
        "pause_expires_at": None,
        "queued_reason": "waiting for a free worker (1 of 2 busy); it is next in line",
        "progress": {
            "rows_done": 0,
            "rows_rejected": 0,
            "bytes_done": 68,
            "bytes_total": 268000000,
            "percent": 0.0,
            "rows_per_s": 0.0,
            "eta_s": None,
        },
        "rows_rolled_back": None,
        "summary": None,
        "error": None,
        "termination_reason": "",
        "download_url": None,
        "errors_url": "http://127.0.0.1:8000/api/tasks/3f2a9c1e-5b7d-4e0a-9c3b-2d1f0e8a7b6c/errors/",
        "retry": None,
    },
)
EXPORT_EXAMPLE = OpenApiExample(
    "An export, queued",
    response_only=True,
    status_codes=["202"],
    value={
        **IMPORT_EXAMPLE.value,
        "task_id": "9c1e4b7d-2a3f-4c5e-8d6b-0f1e2d3c4b5a",
        "kind": "export",
        "filename": None,
        "export_range": {"from": "2025-06-01", "to": "2025-06-30"},
        "progress": {
            "rows_done": 0,
            "rows_rejected": 0,
            "bytes_done": 0,
            "bytes_total": 0,
            "percent": 0.0,
            "rows_per_s": 0.0,
            "eta_s": None,
        },
        "errors_url": None,
    },
)


class UploadFileApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        operation_id="upload_file",
        summary="Upload a CSV file and start its import",
        description=(
            "Stores the file and answers at once with the queued import job (202). The header "
            "row names the columns; each row's export timestamp comes from `timestamp_column`, "
            "else a `submitted_at` column, else the upload time. `on_error=abort` fails the "
            "whole import on the first bad row; `skip` keeps the good rows and lists the bad "
            "ones at `/api/tasks/{task_id}/errors/`."
        ),
        request={"multipart/form-data": UploadSerializer},
        responses={
            202: OpenApiResponse(JobSerializer, examples=[IMPORT_EXAMPLE]),
            **errors(400, 413, 415, 429, 507),
            400: OpenApiResponse(ErrorSerializer, description="Not a usable CSV file."),
            409: duplicate_or_conflict(),
        },
    )
    def post(self, request: Request) -> Response:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > settings.COLLECT_MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD:
            raise too_large()  # refused before a byte of it is stored
        form = UploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        upload = form.validated_data["upload"]
        if upload.size > settings.COLLECT_MAX_UPLOAD_BYTES:
            raise too_large()
        job = import_start(
            owner=signed_in(request),
            source=Path(upload.temporary_file_path()),
            filename=upload.name,
            dataset_name=form.validated_data["dataset"],
            timestamp_column=form.validated_data["timestamp_column"] or None,
            on_error=form.validated_data["on_error"],
            max_rejects=form.validated_data["max_rejects"],
            sha256=getattr(upload, "sha256", None),  # by SizeLimitedUploadHandler
            force=form.validated_data["force"],
        )
        return _accepted(request, job)


@extend_schema_view(
    get=extend_schema(
        operation_id="task_list",
        summary="List your tasks",
        description="Your import and export jobs, newest first (staff see everyone's).",
        parameters=[
            OpenApiParameter(
                "status", str, enum=Status.values, description="Only jobs in this state."
            ),
            OpenApiParameter("kind", str, enum=Kind.values, description="Only this kind."),
            OpenApiParameter(
                "id_prefix",
                {"type": "string", "pattern": "^[0-9a-fA-F-]{1,36}$"},
                description="Only jobs whose task id starts with this (hex digits and -).",
            ),
        ],
        responses={200: JobSerializer(many=True), **errors(400, 404)},
    )
)
class TaskListApi(ListAPIView[Job]):
    serializer_class = JobSerializer

    def get_queryset(self) -> QuerySet[Job]:
        params = self.request.query_params
        return selectors.jobs_visible_to(
            signed_in(self.request),
            status=params.get("status"),
            kind=params.get("kind"),
            id_prefix=params.get("id_prefix"),
        )


class TaskDetailApi(APIView):
    @extend_schema(
        operation_id="task_retrieve",
        summary="One task, with its progress",
        parameters=[TASK_ID],
        responses={200: JobSerializer, **errors(404), 404: NOT_FOUND},
    )
    def get(self, request: Request, task_id: str) -> Response:
        job = selectors.job_visible_to(signed_in(request), task_id)
        return Response(JobSerializer(job, context={"request": request}).data)


class ControlApi(APIView):
    """Base for pause, resume and terminate: find the job, apply the one service."""

    def post(self, request: Request, task_id: str) -> Response:
        job = selectors.job_visible_to(signed_in(request), task_id)
        job = self.control(job, request)
        return Response(JobSerializer(job, context={"request": request}).data)

    def control(self, job: Job, request: Request) -> Job:
        raise NotImplementedError


CONTROL_RESPONSES = {200: JobSerializer, **errors(404, 409), 404: NOT_FOUND, 409: CONFLICT}


@extend_schema_view(
    post=extend_schema(
        operation_id="task_pause",
        summary="Pause a task",
        description=(
            "A queued task pauses at once; a running one becomes `pausing` and `paused` after "
            "its current batch is committed. Pausing a paused task changes nothing. A task "
            "left paused longer than COLLECT_PAUSE_TIMEOUT seconds is terminated."
        ),
        request=None,
        parameters=[TASK_ID],
        responses=CONTROL_RESPONSES,
    )
)
class PauseApi(ControlApi):
    def control(self, job: Job, request: Request) -> Job:
        return services.job_pause(job_id=job.pk)


@extend_schema_view(
    post=extend_schema(
        operation_id="task_resume",
        summary="Resume a paused task",
        description=(
            "The task is queued again and continues from its last checkpoint: no row is "
            "written twice and none is skipped. Resuming a queued or running task changes "
            "nothing; resuming a `pausing` task cancels the pause."
        ),
        request=None,
        parameters=[TASK_ID],
        responses=CONTROL_RESPONSES,
    )
)
class ResumeApi(ControlApi):
    def control(self, job: Job, request: Request) -> Job:
        return services.job_resume(job_id=job.pk)


@extend_schema_view(
    post=extend_schema(
        operation_id="task_terminate",
        summary="Terminate a task and roll it back",
        description=(
            "Every row the task wrote is removed, as if it never ran; the task's record stays "
            "with who terminated it, why and when. A running task becomes `terminating` until "
            "its worker has stopped, then `terminated`. The brief's `revoke` is this call."
        ),
        request=None,
        parameters=[TASK_ID],
        responses=CONTROL_RESPONSES,
    )
)
class TerminateApi(ControlApi):
    def control(self, job: Job, request: Request) -> Job:
        return services.job_terminate(job_id=job.pk, by=signed_in(request))


class TaskErrorsApi(APIView):
    @extend_schema(
        operation_id="task_errors",
        summary="Rejected rows of an import, as CSV",
        description=(
            "One line per rejected record: its line in the file, why, and its start. At most "
            "COLLECT_MAX_STORED_REJECTS are kept; a last line says how many more were counted."
        ),
        parameters=[TASK_ID],
        responses={(200, "text/csv"): CSV_FILE, **errors(404), 404: NOT_FOUND},
    )
    def get(self, request: Request, task_id: str) -> FileResponse:
        job = selectors.job_visible_to(signed_in(request), task_id)
        return FileResponse(
            rejects_csv(job),
            as_attachment=True,
            filename=f"{job.pk}-errors.csv",
            content_type="text/csv; charset=utf-8",
        )


EXPORT_DESCRIPTION = (
    "Starts an export job of the dataset's rows whose timestamp lies in the range and answers "
    "at once with it (202). Both ends are inclusive: a day (YYYY-MM-DD, UTC) or an ISO 8601 "
    "date-time. Only imports completed when the export starts are included. When the job "
    "has completed, its CSV is at `download_url`. Cells that begin with =, +, -, @, tab or CR "
    "are prefixed with a single quote unless `raw` is true."
)


class ExportBriefApi(APIView):
    @extend_schema(
        operation_id="export",
        summary="Export a date range as CSV (the brief's call)",
        description=EXPORT_DESCRIPTION,
        parameters=[
            OpenApiParameter(
                "from_date", DAY, required=True, description="First day (or ISO date-time)."
            ),
            OpenApiParameter(
                "to_date", DAY, required=True, description="Last day (or ISO date-time)."
            ),
            OpenApiParameter(
                "dataset",
                {
                    "type": "string",
                    "maxLength": NAME_MAX_CHARS,
                    "pattern": f"^$|{DATASET_NAME_PATTERN}",  # empty: the default
                },
                description=f"Default: {DEFAULT_DATASET}.",
            ),
            OpenApiParameter(
                "raw", bool, description="Leave cells that look like formulas as they are."
            ),
        ],
        responses={
            202: OpenApiResponse(JobSerializer, examples=[EXPORT_EXAMPLE]),
            **errors(400, 403, 404, 429),
            404: OpenApiResponse(ErrorSerializer, description="You have no such dataset."),
        },
    )
    def get(self, request: Request) -> Response:
        if isinstance(request.successful_authenticator, SessionAuthentication):
            _require_same_origin(request)
        params = request.query_params
        job = export_start(
            owner=signed_in(request),
            dataset_name=params.get("dataset") or DEFAULT_DATASET,
            first=params.get("from_date"),
            last=params.get("to_date"),
            raw=BooleanField().to_internal_value(params.get("raw") or False),
            range_names=("from_date", "to_date"),
        )
        return _accepted(request, job)


class ExportCreateApi(APIView):
    @extend_schema(
        operation_id="export_create",
        summary="Start an export",
        description=EXPORT_DESCRIPTION,
        request=ExportSerializer,
        responses={
            202: OpenApiResponse(JobSerializer, examples=[EXPORT_EXAMPLE]),
            **errors(400, 404, 415, 429),
            404: OpenApiResponse(ErrorSerializer, description="You have no such dataset."),
        },
    )
    def post(self, request: Request) -> Response:
        form = ExportSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        job = export_start(
            owner=signed_in(request),
            dataset_name=data["dataset"],
            first=data["from"],
            last=data["to"],
            columns=data.get("columns") or None,
            raw=data["raw"],
        )
        return _accepted(request, job)


class TaskDownloadApi(APIView):
    @extend_schema(
        operation_id="task_download",
        summary="The CSV of a completed export",
        description="409 until the export has completed; 410 once its file has expired.",
        parameters=[TASK_ID],
        responses={
            (200, "text/csv"): CSV_FILE,
            **errors(400, 404, 409, 410),
            400: OpenApiResponse(ErrorSerializer, description="The task is an import."),
            404: NOT_FOUND,
            409: CONFLICT,
        },
    )
    def get(self, request: Request, task_id: str) -> FileResponse:
        job = selectors.job_visible_to(signed_in(request), task_id)
        if job.kind != "export":
            raise InvalidInput("only an export has a file to download")
        if job.status != "completed":
            raise Conflict(f"the export is {job.status}, not completed", status=job.status)
        try:
            stream = export_open(export_pieces(job))  # FileResponse closes it
        except FileNotFoundError:
            raise Gone("the export's file has expired; start the export again") from None
        name = f"{job.dataset.name}-{job.pk}.csv"
        return FileResponse(stream, as_attachment=True, filename=name, content_type="text/csv")


def _require_same_origin(request: Request) -> None:
    """A GET that starts a job, authenticated by the session cookie alone, must come from
    this site's own pages: a link or an image on another site would otherwise start jobs
    in the user's name (a GET carries no CSRF token). Token clients are not concerned."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        same = site in ("same-origin", "none")
    else:
        origin = request.headers.get("Origin") or request.headers.get("Referer") or ""
        same = bool(origin) and urlsplit(origin).netloc == request.get_host()
    if not same:
        raise Forbidden(
            "with a session cookie, start exports from this site's page or POST /api/exports/;"
            " scripts authenticate with a token"
        )


def _accepted(request: Request, job: Job) -> Response:
    """202 with the job that will do the work."""
    return Response(JobSerializer(job, context={"request": request}).data, http.HTTP_202_ACCEPTED)


def brief_alias(view: type[ControlApi], operation_id: str) -> type[ControlApi]:
    """The same control under the brief's path, so its users' scripts keep working."""
    return extend_schema_view(post=extend_schema(operation_id=operation_id))(
        type(f"Brief{view.__name__}", (view,), {})
    )


@extend_schema_view(
    get=extend_schema(
        operation_id="dataset_list",
        responses={200: DatasetSerializer(many=True), **errors(404)},
        summary="List your datasets",
        description=(
            "Your datasets (staff see everyone's), by name: their columns, and the rows, imports "
            "and first and last day of the records of their completed imports."
        ),
    )
)
class DatasetListApi(ListAPIView[Dataset]):
    serializer_class = DatasetSerializer

    def get_queryset(self) -> QuerySet[Dataset]:
        return datasets_visible_to(signed_in(self.request))


class DatasetDetailApi(APIView):
    @extend_schema(
        operation_id="dataset_retrieve",
        summary="One dataset",
        description=(
            "Staff get their own dataset of that name, else another user's: `owner` names whose."
        ),
        parameters=[
            OpenApiParameter("name", str, "path", description="The dataset's name."),
            OpenApiParameter("owner", str, description="Staff: the username of its owner."),
        ],
        responses={200: DatasetSerializer, **errors(404), 404: NO_DATASET},
    )
    def get(self, request: Request, name: str) -> Response:
        dataset = dataset_visible_to(
            signed_in(request), name, owner=request.query_params.get("owner")
        )
        return Response(DatasetSerializer(dataset).data)


class RejectedRowsPage(PageNumberPagination):
    page_size = 100


class TaskRejectedRowsApi(ListAPIView[RejectedRow]):
    serializer_class = RejectedRowSerializer
    pagination_class = RejectedRowsPage

    @extend_schema(
        operation_id="task_rejected_rows",
        summary="Rejected rows of an import, as JSON",
        description=(
            "The rows `/api/tasks/{task_id}/errors/` has as CSV, 100 a page, by line. At most "
            "COLLECT_MAX_STORED_REJECTS are kept; the job's `progress.rows_rejected` counts "
            "them all."
        ),
        parameters=[TASK_ID],
        responses={200: RejectedRowSerializer(many=True), **errors(404)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[RejectedRow]:
        job = selectors.job_visible_to(signed_in(self.request), self.kwargs["task_id"])
        return job.rejected_rows.order_by("line", "pk")
