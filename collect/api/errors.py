"""One JSON error shape for the whole API: {"detail": "...", ...more facts}."""

from django.core.exceptions import ValidationError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from collect.errors import CollectError


def exception_handler(exc, context):
    if isinstance(exc, CollectError):
        return Response({"detail": exc.message, **exc.details}, status=exc.status_code)
    if isinstance(exc, ValidationError):
        return Response({"detail": "; ".join(exc.messages)}, status=400)
    if isinstance(exc, exceptions.ValidationError):
        return Response({"detail": _summary(exc.detail), "fields": exc.detail}, status=400)
    return drf_exception_handler(exc, context)


def _summary(detail) -> str:
    """DRF's per-field messages as one readable sentence."""
    if isinstance(detail, dict):
        return "; ".join(
            _summary(value) if key == "non_field_errors" else f"{key}: {_summary(value)}"
            for key, value in detail.items()
        )
    if isinstance(detail, list):
        return " ".join(_summary(item) for item in detail)
    return str(detail)
