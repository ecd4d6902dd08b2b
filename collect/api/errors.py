"""One JSON error shape for the whole API: {"detail": "...", ...more facts}."""

from django.core.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from collect.errors import CollectError


def exception_handler(exc, context):
    if isinstance(exc, CollectError):
        return Response({"detail": exc.message, **exc.details}, status=exc.status_code)
    if isinstance(exc, ValidationError):
        return Response({"detail": "; ".join(exc.messages)}, status=400)
    return drf_exception_handler(exc, context)
