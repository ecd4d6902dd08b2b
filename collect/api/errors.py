"""One JSON error shape for the whole API: {"detail": "...", ...more facts}.

DRF views raise into `exception_handler`; whatever fails outside them (a middleware, the
database going away under the session machinery) reaches Django's error handlers, which
answer in the same shape.
"""

import logging
import sys
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from collect import faults
from collect.errors import CollectError, InsufficientStorage, InternalError, Unavailable

log = logging.getLogger(__name__)
RETRY_AFTER_DATABASE_S = 5
RETRY_AFTER_DISK_S = 30
_Response = TypeVar("_Response", bound=HttpResponseBase)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, CollectError):
        return _collect_error_response(exc)
    if isinstance(exc, ValidationError):
        return Response({"detail": "; ".join(exc.messages)}, status=400)
    if isinstance(exc, exceptions.ValidationError):
        return Response({"detail": _summary(exc.detail), "fields": exc.detail}, status=400)
    response = drf_exception_handler(exc, context)
    if response is not None:
        return response
    set_rollback()
    return _collect_error_response(unexpected_error(exc))


def unexpected_error(exc: BaseException) -> CollectError:
    """What an error that no view expected means for the client."""
    if faults.is_disk_full(exc):
        log.error("out of disk space: %s", exc)
        return InsufficientStorage(
            "the server has run out of disk space; nothing was kept, try again later",
            retry_after=RETRY_AFTER_DISK_S,
        )
    if faults.is_database_unreachable(exc):
        log.error("the database is unreachable: %s", exc)
        return Unavailable(
            "the database is unreachable; try again shortly", retry_after=RETRY_AFTER_DATABASE_S
        )
    log.error("internal error", exc_info=exc)
    return InternalError("internal error")


def _collect_error_response(exc: CollectError) -> Response:
    return _with_retry_after(
        Response({"detail": exc.message, **exc.details}, status=exc.status_code), exc
    )


def _with_retry_after(response: _Response, exc: CollectError) -> _Response:
    if retry_after := exc.details.get("retry_after"):
        response["Retry-After"] = str(retry_after)
    return response


def _summary(detail: object) -> str:
    """DRF's per-field messages as one readable sentence."""
    if isinstance(detail, dict):
        return "; ".join(
            _summary(value) if key == "non_field_errors" else f"{key}: {_summary(value)}"
            for key, value in detail.items()
        )
    if isinstance(detail, list):
        return " ".join(_summary(item) for item in detail)
    return str(detail)


# Django's error handlers (collect/urls.py), for what fails outside a DRF view.


def server_error(request: HttpRequest) -> JsonResponse:
    exc = sys.exception()  # Django calls its handler while the error is being handled
    error = unexpected_error(exc) if exc is not None else InternalError("internal error")
    response = JsonResponse({"detail": error.message, **error.details}, status=error.status_code)
    return _with_retry_after(response, error)


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": f"nothing at {request.path}"}, status=404)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": "bad request"}, status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": str(exception or "") or "forbidden"}, status=403)


def csrf_failure(request: HttpRequest, reason: str = "") -> JsonResponse:
    return JsonResponse(
        {"detail": f"CSRF check failed ({reason}): reload the page and try again"}, status=403
    )
