"""What the runner measures as it goes, for /metrics: how long each batch takes.

Kept in this process (prometheus_client's default registry), not in the database: a batch's
duration is the worker's own fact, written nowhere else. A worker process runs its jobs in
threads, so one process is one registry (no multiprocess mode); the embedded server's
/metrics shows its own threads' batches, and a distributed `collect worker` serves its own
on COLLECT_WORKER_METRICS_PORT.
"""

from prometheus_client import Histogram

# From an empty batch (a pause answered) to one past COLLECT_BATCH_SECONDS' 0.4 s default.
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.4, 0.5, 1.0, 2.5, 5.0, 10.0)

BATCH_SECONDS = Histogram(
    "collect_batch_duration_seconds",
    "Time one batch of a job took, its commit included, in this process.",
    ["kind"],
    buckets=BATCH_BUCKETS,
)


def batch_observe(*, kind: str, seconds: float) -> None:
    BATCH_SECONDS.labels(kind=kind).observe(seconds)
