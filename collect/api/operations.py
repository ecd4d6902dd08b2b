"""The operator's endpoints, outside /api/ and without a user: /healthz, /readyz, /metrics."""

import hmac

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from prometheus_client import CONTENT_TYPE_LATEST
from rest_framework import serializers
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from collect.api.serializers import ErrorSerializer
from collect.operations.health import readiness
from collect.operations.metrics import metrics_text

HealthSerializer = inline_serializer("Health", {"status": serializers.CharField()})
NotReadySerializer = inline_serializer(
    "NotReady",
    {
        "detail": serializers.CharField(),
        "down": serializers.ListField(child=serializers.CharField()),
        "reasons": serializers.DictField(child=serializers.CharField()),
    },
)


class OperationsApi(APIView):
    # No token, no session: an orchestrator's probe has neither, and reading a session would
    # need the database that /readyz is asked about.
    authentication_classes = []
    permission_classes = [AllowAny]


class HealthzApi(OperationsApi):
    @extend_schema(
        operation_id="healthz",
        summary="Liveness: the process answers",
        description="200 whenever the process can answer HTTP; it asks nothing of any service.",
        responses={200: HealthSerializer},
        auth=[],
        tags=["operations"],
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class ReadyzApi(OperationsApi):
    @extend_schema(
        operation_id="readyz",
        summary="Readiness: the services this process needs answer",
        description=(
            "The database always; the broker when jobs go to Celery workers. 503 lists what "
            "is down (`down`) and the error each gave (`reasons`)."
        ),
        responses={
            200: HealthSerializer,
            503: OpenApiResponse(NotReadySerializer, description="Something it needs is down."),
        },
        auth=[],
        tags=["operations"],
    )
    def get(self, request: Request) -> Response:
        state = readiness()
        if state.ready:
            return Response({"status": "ready"})
        body = {
            "detail": f"not ready: {', '.join(state.down)} down",
            "down": state.down,
            "reasons": state.reasons,
        }
        return Response(body, status=503, headers={"Retry-After": "5"})


class MetricsApi(OperationsApi):
    def get_authenticate_header(self, request: Request) -> str:
        # Without it DRF answers a missing credential with 403, not 401.
        return 'Bearer realm="metrics"'

    @extend_schema(
        operation_id="metrics",
        summary="Metrics in the Prometheus text format",
        description=(
            "Jobs by kind and status, rows written and rejected, and the time jobs waited in "
            "the queue, from the database; this process's batch durations. With "
            "COLLECT_METRICS_TOKEN set, send `Authorization: Bearer TOKEN`."
        ),
        responses={
            (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR),
            401: ErrorSerializer,
        },
        auth=[],
        tags=["operations"],
    )
    def get(self, request: Request) -> HttpResponse:
        _check_metrics_token(request)
        return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)


def _check_metrics_token(request: Request) -> None:
    expected = settings.COLLECT_METRICS_TOKEN
    if not expected:
        return
    sent = request.headers.get("Authorization", "")
    if not hmac.compare_digest(sent.encode(), f"Bearer {expected}".encode()):
        raise NotAuthenticated("metrics need Authorization: Bearer and COLLECT_METRICS_TOKEN")
