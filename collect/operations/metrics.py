"""GET /metrics: the jobs as the database has them, computed at scrape time, so that every
web process answers the same whichever one is scraped; and this process's own batches.

Job counts, rows and the time jobs waited in the queue come from the jobs table (a custom
collector): they describe the deployment, not the process, and stay right across machines
and restarts. Batch durations are measured where batches run (collect.jobs.metrics).
"""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.db.models import Count, F, Q, Sum
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from collect.jobs.models import Job
from collect.jobs.states import Kind, Status

# Seconds from a job's creation to the first time a worker took it.
QUEUE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)


class JobsCollector(Collector):
    """Reads the jobs table each time it is collected."""

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "collect_jobs", "Jobs by kind and status.", labels=["kind", "status"]
        )
        rows = GaugeMetricFamily(
            "collect_rows",
            "Rows written by jobs (imported or exported), by kind and the job's status.",
            labels=["kind", "status"],
        )
        rejected = GaugeMetricFamily(
            "collect_rows_rejected",
            "Rows of imports rejected as malformed, by the job's status.",
            labels=["status"],
        )
        counts: dict[tuple[str, str], dict[str, Any]] = {
            (row["kind"], row["status"]): dict(row)
            for row in Job.objects.order_by()
            .values("kind", "status")
            .annotate(jobs=Count("id"), rows=Sum("rows_done"), rejected=Sum("rows_rejected"))
        }
        for kind in Kind.values:  # every pair, zero included: a series never vanishes
            for status in Status.values:
                row = counts.get((kind, status), {})
                jobs.add_metric([kind, status], row.get("jobs", 0))
                rows.add_metric([kind, status], row.get("rows") or 0)
                if kind == Kind.IMPORT:
                    rejected.add_metric([status], row.get("rejected") or 0)
        yield jobs
        yield rows
        yield rejected
        yield queue_wait()


def queue_wait() -> HistogramMetricFamily:
    """The time from creation to the first claim of every job a worker has taken, as a
    cumulative histogram counted by the database (one query, whatever the jobs' number)."""
    wait = F("started_at") - F("created_at")
    taken = Q(started_at__isnull=False)
    totals = Job.objects.order_by().aggregate(
        count=Count("id", filter=taken),
        **{
            f"le_{index}": Count(
                "id", filter=taken & Q(started_at__lte=F("created_at") + timedelta(seconds=bound))
            )
            for index, bound in enumerate(QUEUE_BUCKETS)
        },
    )
    total_wait = Job.objects.order_by().filter(taken).aggregate(wait=Sum(wait))["wait"]
    buckets = [(str(bound), totals[f"le_{index}"]) for index, bound in enumerate(QUEUE_BUCKETS)]
    buckets.append(("+Inf", totals["count"]))
    seconds = total_wait.total_seconds() if total_wait is not None else 0.0
    histogram = HistogramMetricFamily(
        "collect_job_queued_seconds",
        "Time a job waited from its creation until a worker first took it.",
    )
    histogram.add_metric([], buckets, sum_value=max(0.0, seconds))
    return histogram


_jobs_registry = CollectorRegistry(auto_describe=False)
_jobs_registry.register(JobsCollector())


def metrics_text() -> bytes:
    """The Prometheus text format: the jobs table's metrics and this process's own."""
    return generate_latest(_jobs_registry) + generate_latest(REGISTRY)
