"""The operator's endpoints in-process: /healthz and /readyz without a token, /metrics from
the jobs table (counts, rows, the queue-wait histogram) and its optional token."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from collect.jobs.states import Kind, Status
from tests.factories import job_factory

pytestmark = pytest.mark.django_db


def scrape(client: APIClient, **headers: str) -> dict[tuple[str, tuple], float]:
    """/metrics as {(sample name, sorted labels): value}."""
    reply = client.get("/metrics", **headers)
    assert reply.status_code == 200, reply.content[:300]
    assert reply["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(reply.content.decode())
        for sample in family.samples
    }


def test_healthz_answers_without_a_token():
    reply = APIClient().get("/healthz")
    assert (reply.status_code, reply.json()) == (200, {"status": "ok"})


def test_readyz_answers_ready_without_a_token_when_its_services_answer():
    # On the distributed stack this asks the broker of the run too (COLLECT_DISPATCH=celery).
    reply = APIClient().get("/readyz")
    assert (reply.status_code, reply.json()) == (200, {"status": "ready"})


def test_the_operations_endpoints_are_in_the_openapi_schema():
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert {"/healthz", "/readyz", "/metrics"} <= set(schema["paths"])
    assert set(schema["paths"]["/readyz"]["get"]["responses"]) == {"200", "503"}


def test_metrics_count_jobs_by_kind_and_status_and_their_rows(user, other_user):
    for _ in range(3):
        job_factory(user, Kind.IMPORT, Status.COMPLETED, rows_done=100, rows_rejected=2)
    job_factory(other_user, Kind.IMPORT, Status.RUNNING, rows_done=40, rows_rejected=1)
    job_factory(user, Kind.IMPORT, Status.PAUSED, rows_done=7)
    job_factory(user, Kind.EXPORT, Status.COMPLETED, rows_done=250)
    job_factory(user, Kind.EXPORT, Status.QUEUED)

    samples = scrape(APIClient())

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("collect_jobs", kind="import", status="completed") == 3
    assert value("collect_jobs", kind="import", status="running") == 1
    assert value("collect_jobs", kind="import", status="paused") == 1
    assert value("collect_jobs", kind="export", status="completed") == 1
    assert value("collect_jobs", kind="export", status="queued") == 1
    assert value("collect_jobs", kind="import", status="failed") == 0  # present, at zero
    assert value("collect_rows", kind="import", status="completed") == 300
    assert value("collect_rows", kind="import", status="running") == 40
    assert value("collect_rows", kind="export", status="completed") == 250
    assert value("collect_rows_rejected", status="completed") == 6
    assert value("collect_rows_rejected", status="running") == 1
    jobs_series = [key for key in samples if key[0] == "collect_jobs"]
    assert len(jobs_series) == len(Kind.values) * len(Status.values)


def test_metrics_histogram_of_the_time_jobs_waited_before_a_worker_took_them(user):
    now = timezone.now()
    for waited_s in (0.02, 0.3, 0.3, 4.0, 90.0):
        job_factory(
            user,
            Kind.IMPORT,
            Status.COMPLETED,
            created_at=now - timedelta(seconds=waited_s),
            started_at=now,
        )
    job_factory(user, Kind.IMPORT, Status.QUEUED)  # not taken yet: not in the histogram

    samples = scrape(APIClient())

    def bucket(bound: str) -> float:
        return samples[("collect_job_queued_seconds_bucket", (("le", bound),))]

    assert bucket("0.01") == 0
    assert bucket("0.05") == 1
    assert bucket("0.25") == 1
    assert bucket("0.5") == 3
    assert bucket("5.0") == 4
    assert bucket("60.0") == 4
    assert bucket("300.0") == 5
    assert bucket("+Inf") == 5
    assert samples[("collect_job_queued_seconds_count", ())] == 5
    assert samples[("collect_job_queued_seconds_sum", ())] == pytest.approx(94.62, abs=1e-3)


@override_settings(COLLECT_METRICS_TOKEN="scrape-me")
def test_metrics_ask_for_the_token_when_one_is_set():
    anonymous = APIClient().get("/metrics")
    assert anonymous.status_code == 401
    assert "COLLECT_METRICS_TOKEN" in anonymous.json()["detail"]
    wrong = APIClient().get("/metrics", HTTP_AUTHORIZATION="Bearer guess")
    assert wrong.status_code == 401
    samples = scrape(APIClient(), HTTP_AUTHORIZATION="Bearer scrape-me")
    assert samples[("collect_jobs", (("kind", "import"), ("status", "queued")))] == 0
    # The probes stay open: an orchestrator has no token.
    assert APIClient().get("/healthz").status_code == 200
