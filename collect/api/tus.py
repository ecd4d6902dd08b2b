"""Resumable uploads by the tus 1.0.0 protocol (https://tus.io/protocols/resumable-upload),
at /api/uploads/: this module only translates the protocol's headers to and from
collect.uploads.services, which does the work.

Extensions: creation, creation-with-upload, creation-defer-length, termination, checksum
(sha1, md5, sha256), expiration and concatenation.
"""

import base64
import io
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, overload
from urllib.parse import urlsplit
from uuid import UUID

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils.http import http_date
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from collect.api.auth import signed_in
from collect.api.schema import duplicate_or_conflict, errors
from collect.api.serializers import DuplicateSerializer
from collect.datasets import DEFAULT_DATASET
from collect.errors import CollectError, InvalidInput
from collect.imports.choices import OnError
from collect.uploads import services
from collect.uploads.models import Upload
from collect.uploads.selectors import upload_visible_to

if TYPE_CHECKING:  # a protocol of the stubs only
    from rest_framework.permissions import _SupportsHasPermission

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = (
    "creation,creation-with-upload,creation-defer-length,termination,checksum,expiration,"
    "concatenation"
)
CHUNK_TYPE = "application/offset+octet-stream"
METADATA_KEYS = (
    *("filename", "dataset", "timestamp_column", "on_error", "max_rejects"),
    *("sha256", "force"),
)
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")
_UPLOAD_PATH = re.compile(r"/api/uploads/([^/]+)/?$")
_DIGITS = re.compile(r"[0-9]{1,19}")  # what a 64-bit offset can hold


TUS_RESUMABLE = OpenApiParameter(
    "Tus-Resumable", str, "header", required=True, enum=[TUS_VERSION], description="1.0.0"
)
UPLOAD_ID = OpenApiParameter(
    "upload_id", {"type": "string", "format": "uuid"}, "path", description="The upload's id."
)
OFFSET = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}


class PreconditionFailed(CollectError):
    status_code = 412


class UnsupportedMediaType(CollectError):
    status_code = 415


class TusApi(APIView):
    """What every tus resource shares: the version check, method override, and the headers
    every response carries."""

    parser_classes = []  # a chunk is read as a stream, never parsed

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        # For clients behind proxies that only pass GET and POST.
        override = request.headers.get("X-HTTP-Method-Override")
        if request.method == "POST" and override:
            request.method = override.upper()
        return super().dispatch(request, *args, **kwargs)

    def get_permissions(self) -> "Sequence[_SupportsHasPermission]":
        if self.request.method == "OPTIONS":
            return []  # discovery needs no account
        return super().get_permissions()

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        if request.method != "OPTIONS" and request.headers.get("Tus-Resumable") != TUS_VERSION:
            raise PreconditionFailed(f"this server speaks tus {TUS_VERSION}: send Tus-Resumable")
        super().initial(request, *args, **kwargs)

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Tus-Resumable"] = TUS_VERSION
        response["Cache-Control"] = "no-store"
        if response.status_code == PreconditionFailed.status_code:
            response["Tus-Version"] = TUS_VERSION
        return response

    @extend_schema(exclude=True)
    def options(  # type: ignore[override]  # a tus answer is headers only: no Response
        self, request: Request, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        response = _empty(204)
        response["Tus-Version"] = TUS_VERSION
        response["Tus-Max-Size"] = str(settings.COLLECT_MAX_UPLOAD_BYTES)
        response["Tus-Extension"] = TUS_EXTENSIONS
        response["Tus-Checksum-Algorithm"] = ",".join(services.CHECKSUM_ALGORITHMS)
        return response


class UploadCreateApi(TusApi):
    @extend_schema(
        operation_id="upload_create",
        summary="Create a resumable upload (tus 1.0.0)",
        description=(
            "tus creation: `Upload-Length` (or `Upload-Defer-Length: 1`), optional "
            "`Upload-Metadata` with base64 values for `filename`, `dataset`, "
            "`timestamp_column`, `on_error`, `max_rejects`, `force` and `sha256` (hex, of the "
            "whole file: bytes the dataset already has are then refused here with 409, "
            "naming the import that has them). A body of type "
            "application/offset+octet-stream is the first chunk. `Upload-Concat: partial` "
            "makes a piece of a later `Upload-Concat: final;URL URL…` upload. Answers 201 "
            "with `Location`. When the upload is complete its import starts and "
            "`Collect-Task-Id` names the job."
        ),
        request={CHUNK_TYPE: OpenApiTypes.BINARY},
        parameters=[
            TUS_RESUMABLE,
            OpenApiParameter("Upload-Length", OFFSET, "header", description="The file's size."),
            OpenApiParameter(
                "Upload-Defer-Length", str, "header", enum=["1"], description="Size told later."
            ),
            OpenApiParameter("Upload-Metadata", str, "header", description="key base64,…"),
            OpenApiParameter(
                "Upload-Concat", str, "header", description="`partial`, or `final;URL URL…`"
            ),
        ],
        responses={
            201: OpenApiResponse(description="Created; see `Location`."),
            **errors(400, 404, 410, 412, 413, 415, 423, 429, 460, 507),
            409: duplicate_or_conflict(),
        },
    )
    def post(self, request: Request) -> HttpResponse:
        options = _options(request.headers.get("Upload-Metadata", ""))
        metadata = request.headers.get("Upload-Metadata", "")
        concat = request.headers.get("Upload-Concat", "")
        if concat.startswith("final;"):
            upload = services.upload_concatenate(
                owner=signed_in(request),
                part_ids=[_upload_id(url) for url in concat.removeprefix("final;").split()],
                options=options,
                metadata=metadata,
            )
            return _created(request, upload)
        if concat not in ("", "partial"):
            raise InvalidInput("Upload-Concat must be `partial` or `final;URL URL…`")
        if _body_length(request):  # refused before anything is created
            _check_chunk_type(request)
        checksum = _checksum(request)
        upload = services.upload_create(
            owner=signed_in(request),
            length=_declared_length(request),
            options=options,
            metadata=metadata,
            partial=concat == "partial",
        )
        if _body_length(request):
            upload = services.upload_append(
                owner=signed_in(request),
                upload_id=str(upload.id),
                offset=0,
                body=request.stream,
                body_length=_body_length(request),
                checksum=checksum,
            )
        return _created(request, upload)


@extend_schema(exclude=True)
class UploadCreateWithoutSlashApi(UploadCreateApi):
    """The same, for a client given the endpoint without its slash: a redirect would lose
    the POST."""


class UploadApi(TusApi):
    @extend_schema(exclude=True)
    def head(self, request: Request, upload_id: str) -> HttpResponse:
        upload = upload_visible_to(signed_in(request), upload_id)
        response = _empty(200)
        _describe(request, upload, response)
        if upload.metadata:
            response["Upload-Metadata"] = upload.metadata
        if upload.concat == Upload.Concat.PARTIAL:
            response["Upload-Concat"] = "partial"
        elif upload.concat == Upload.Concat.FINAL:
            urls = " ".join(_location(request, part) for part in upload.parts)
            response["Upload-Concat"] = f"final;{urls}"
        if upload.error:
            response["Collect-Error"] = upload.error
        return response

    @extend_schema(
        operation_id="upload_append",
        summary="Append a chunk to a resumable upload (tus 1.0.0)",
        description=(
            "The body is written at `Upload-Offset`, which must equal the upload's offset "
            "(else 409). With `Upload-Checksum: sha1|md5|sha256 BASE64` a mismatching chunk "
            "is discarded (460). Answers 204 with the new `Upload-Offset`; the request that "
            "completes the upload also carries `Collect-Task-Id`."
        ),
        request={CHUNK_TYPE: OpenApiTypes.BINARY},
        parameters=[
            UPLOAD_ID,
            TUS_RESUMABLE,
            OpenApiParameter("Upload-Offset", OFFSET, "header", required=True),
            OpenApiParameter(
                "Upload-Length", OFFSET, "header", description="A deferred length, declared."
            ),
            OpenApiParameter(
                "Upload-Checksum", str, "header", description="`sha1|md5|sha256 BASE64`"
            ),
        ],
        responses={
            204: OpenApiResponse(description="Stored; see `Upload-Offset`."),
            **errors(400, 403, 404, 410, 412, 413, 415, 423, 460, 507),
            409: OpenApiResponse(
                DuplicateSerializer,
                description=(
                    "`Upload-Offset` is not the upload's offset (`offset` says it); or, on "
                    "the last chunk of an upload that declared no `sha256`, the dataset has "
                    "these bytes already (`task_id` names the import)."
                ),
            ),
        },
    )
    def patch(self, request: Request, upload_id: str) -> HttpResponse:
        _check_chunk_type(request)
        upload = services.upload_append(
            owner=signed_in(request),
            upload_id=upload_id,
            offset=_header_int(request, "Upload-Offset", required=True),
            body=request.stream or io.BytesIO(),
            body_length=_body_length(request),
            checksum=_checksum(request),
            length=_header_int(request, "Upload-Length"),
        )
        response = _empty(204)
        _describe(request, upload, response)
        return response

    @extend_schema(
        operation_id="upload_terminate",
        summary="Terminate a resumable upload (tus 1.0.0)",
        description="Deletes the bytes received; later requests for it answer 410.",
        parameters=[UPLOAD_ID, TUS_RESUMABLE],
        responses={
            204: OpenApiResponse(description="Terminated."),
            **errors(404, 410, 412),
        },
    )
    def delete(self, request: Request, upload_id: str) -> HttpResponse:
        services.upload_terminate(owner=signed_in(request), upload_id=upload_id)
        return _empty(204)


def _empty(status: int) -> HttpResponse:
    """A tus answer: all in its headers, no body, so no Content-Type either."""
    response = HttpResponse(status=status)
    del response["Content-Type"]
    return response


def _created(request: Request, upload: Upload) -> HttpResponse:
    response = _empty(201)
    response["Location"] = _location(request, upload.id)
    _describe(request, upload, response)
    return response


def _describe(request: Request, upload: Upload, response: HttpResponse) -> None:
    """The headers that say where an upload stands."""
    response["Upload-Offset"] = str(upload.offset)
    if upload.length is None:
        response["Upload-Defer-Length"] = "1"
    else:
        response["Upload-Length"] = str(upload.length)
    if upload.state == Upload.State.RECEIVING:
        response["Upload-Expires"] = http_date(upload.expires_at.timestamp())
    if upload.job_id:
        response["Collect-Task-Id"] = str(upload.job_id)
        response["Collect-Task-Url"] = request.build_absolute_uri(
            reverse("task-detail", args=[upload.job_id])
        )


def _location(request: Request, upload_id: UUID | str) -> str:
    return request.build_absolute_uri(reverse("upload", args=[upload_id]))


def _options(header: str) -> services.UploadOptions:
    """Upload-Metadata: comma-separated `key base64(value)` pairs; Collect reads four keys
    and keeps the rest only to give them back."""
    values: dict[str, str] = {}
    seen: set[str] = set()
    for pair in filter(None, (part.strip() for part in header.split(","))):
        key, _, encoded = pair.partition(" ")
        try:  # ValueError too: b64decode refuses a str that is not ASCII with one
            value = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput(
                f"Upload-Metadata: the value of {key!r} is not base64 of UTF-8"
            ) from None
        if not key or key in seen:
            raise InvalidInput("Upload-Metadata: each key must be given once, and not be empty")
        if "\x00" in value:
            raise InvalidInput(f"Upload-Metadata: the value of {key!r} holds a NUL character")
        seen.add(key)
        if key in METADATA_KEYS:
            values[key] = value
    return services.UploadOptions(
        filename=values.get("filename", ""),
        dataset=values.get("dataset") or DEFAULT_DATASET,
        timestamp_column=values.get("timestamp_column", ""),
        on_error=values.get("on_error") or OnError.ABORT,
        max_rejects=_metadata_count(values.get("max_rejects"), "max_rejects"),
        sha256=values.get("sha256", "").lower(),
        force=_metadata_flag(values.get("force", ""), "force"),
    )


def _metadata_flag(text: str, key: str) -> bool:
    if text.lower() not in (*_TRUE, *_FALSE):
        raise InvalidInput(f"Upload-Metadata: {key} must be true or false")
    return text.lower() in _TRUE


def _metadata_count(text: str | None, key: str) -> int | None:
    if not text:
        return None
    if not _DIGITS.fullmatch(text):
        raise InvalidInput(f"Upload-Metadata: {key} must be a non-negative integer")
    return int(text)


def _declared_length(request: Request) -> int | None:
    length = _header_int(request, "Upload-Length")
    deferred = request.headers.get("Upload-Defer-Length")
    if deferred is not None and deferred != "1":
        raise InvalidInput("Upload-Defer-Length must be 1")
    if (length is None) == (deferred is None):
        raise InvalidInput("send exactly one of Upload-Length and Upload-Defer-Length: 1")
    return length


def _upload_id(url: str) -> str:
    match = _UPLOAD_PATH.search(urlsplit(url).path)
    if not match:
        raise InvalidInput(f"not an upload URL: {url!r}")
    return match.group(1)


@overload
def _header_int(request: Request, name: str, *, required: Literal[True]) -> int: ...
@overload
def _header_int(request: Request, name: str, *, required: bool = False) -> int | None: ...
def _header_int(request: Request, name: str, *, required: bool = False) -> int | None:
    text = request.headers.get(name)
    if text is None:
        if required:
            raise InvalidInput(f"{name} is required")
        return None
    if not _DIGITS.fullmatch(text):  # str.isdigit() takes "²", which int() does not
        raise InvalidInput(f"{name} must be a non-negative integer")
    return int(text)


def _body_length(request: Request) -> int:
    text = request.META.get("CONTENT_LENGTH") or "0"
    if not _DIGITS.fullmatch(text):
        raise InvalidInput("Content-Length must be a non-negative integer")
    return int(text)


def _check_chunk_type(request: Request) -> None:
    media_type = request.content_type.split(";")[0].strip().lower()
    if media_type != CHUNK_TYPE:
        raise UnsupportedMediaType(f"a chunk must be sent as {CHUNK_TYPE}")


def _checksum(request: Request) -> services.Checksum | None:
    header = request.headers.get("Upload-Checksum")
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm not in services.CHECKSUM_ALGORITHMS:
        raise InvalidInput(
            f"unsupported checksum algorithm {algorithm!r}; "
            f"one of {', '.join(services.CHECKSUM_ALGORITHMS)}"
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except ValueError:  # binascii.Error, or a str that is not ASCII
        raise InvalidInput("Upload-Checksum: the checksum is not base64") from None
    return services.Checksum(algorithm, digest)
