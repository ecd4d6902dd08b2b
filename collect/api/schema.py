"""What the OpenAPI schema says beyond what drf-spectacular reads from the views: the error
answers every operation may give, and the links from a response to the operations that
take its ids (drf-spectacular has no way to declare links, so a postprocessing hook adds
them)."""

from typing import Any

from drf_spectacular.utils import OpenApiResponse

from collect.api.serializers import ConflictSerializer, DuplicateSerializer, ErrorSerializer

# Why each error status is answered, as the docs show it; every body is {"detail": ...}.
ERROR_REASONS = {
    400: "The request is not usable; `detail` says why in words.",
    401: "No credentials, or a wrong token.",
    403: "Not allowed (a session request without CSRF, an export link from another site).",
    404: "Nothing of that id or name visible to you, or a page past the last one.",
    409: "Not allowed in the current state; `status` names it.",
    410: "It is gone (expired or terminated).",
    412: "tus: the request lacks `Tus-Resumable: 1.0.0`.",
    413: "Larger than COLLECT_MAX_UPLOAD_BYTES, or past the upload's declared length.",
    415: "tus: a chunk must be sent as application/offset+octet-stream.",
    423: "tus: another request is writing to this upload right now; try again shortly.",
    429: "You have COLLECT_MAX_ACTIVE_JOBS jobs queued, running or paused already.",
    460: "tus: the chunk's Upload-Checksum does not match; it was not kept.",
    503: "The database is unreachable; see `Retry-After`.",
    507: "The server's disk is full; nothing was kept; see `Retry-After`.",
}
# What any operation may answer, whatever it does.
ALWAYS = (401, 503)


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """The documented error answers: these statuses and those of every operation."""
    answers = {}
    for status in sorted({*statuses, *ALWAYS}):
        body = ConflictSerializer if status == 409 else ErrorSerializer
        answers[status] = OpenApiResponse(body, description=ERROR_REASONS[status])
    return answers


def duplicate_or_conflict() -> OpenApiResponse:
    return OpenApiResponse(
        DuplicateSerializer,
        description=(
            "The dataset has these bytes already, from an import completed or under way: "
            "`task_id` names it (send `force` to import them again)."
        ),
    )


def _task_links(source: str, *, download: bool = False) -> dict[str, Any]:
    """Links from a response that names a task (`source`, a runtime expression)."""
    targets = {
        "task": ("task_retrieve", "The task, with its progress."),
        "pause": ("task_pause", "Pause it."),
        "resume": ("task_resume", "Resume it."),
        "terminate": ("task_terminate", "Terminate it and roll it back."),
        "rejected_rows": ("task_rejected_rows", "An import's rejected rows."),
    }
    if download:
        targets = {key: value for key, value in targets.items() if key != "rejected_rows"}
        targets["download"] = ("task_download", "Its CSV, once completed.")
    return {
        name: {"operationId": operation, "parameters": {"task_id": source}, "description": text}
        for name, (operation, text) in targets.items()
    }


# Per operation id: the status whose response gets links, and the links.
LINKS: dict[str, tuple[str, dict[str, Any]]] = {
    "upload_file": ("202", _task_links("$response.body#/task_id")),
    "export": ("202", _task_links("$response.body#/task_id", download=True)),
    "export_create": ("202", _task_links("$response.body#/task_id", download=True)),
    "upload_create": ("201", _task_links("$response.header.Collect-Task-Id")),
    "upload_append": ("204", _task_links("$response.header.Collect-Task-Id")),
    "task_retrieve": ("200", _task_links("$response.body#/task_id")),
    "dataset_list": (
        "200",
        {
            "dataset": {
                "operationId": "dataset_retrieve",
                "parameters": {"name": "$response.body#/results/0/name"},
                "description": "The first dataset listed.",
            }
        },
    ),
}
TUS_HEADERS = {
    "Tus-Resumable": "1.0.0",
    "Upload-Offset": "The bytes the server has.",
    "Upload-Expires": "When an unfinished upload is deleted.",
    "Collect-Task-Id": "Once complete: the import job it started.",
    "Collect-Task-Url": "Once complete: that job's URL.",
}


def add_links_and_headers(result: dict[str, Any], **_: Any) -> dict[str, Any]:
    """POSTPROCESSING_HOOKS: links between operations, and the headers tus answers with."""
    for item in result.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            operation_id = operation.get("operationId")
            responses = operation.get("responses", {})
            if operation_id in LINKS:
                status, links = LINKS[operation_id]
                if status in responses:
                    responses[status]["links"] = links
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and not parameter.get("required"):
                    # The views read an empty optional parameter as one not given.
                    parameter["allowEmptyValue"] = True
            if operation_id == "upload_append" and "requestBody" in operation:
                operation["requestBody"]["required"] = True  # a PATCH is a chunk
            if operation_id in ("upload_create", "upload_append"):
                success = responses.get("201") or responses.get("204") or {}
                success["headers"] = {
                    name: {"schema": {"type": "string"}, "description": text}
                    for name, text in TUS_HEADERS.items()
                }
                if operation_id == "upload_create":
                    success["headers"]["Location"] = {
                        "schema": {"type": "string", "format": "uri"},
                        "description": "The new upload's URL, for its PATCH, HEAD and DELETE.",
                    }
    return result
