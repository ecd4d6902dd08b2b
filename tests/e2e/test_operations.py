"""What an operator probes and scrapes, on a real `collect serve` (and its workers on the
distributed stack): /healthz and /readyz without a token, /metrics before and after an
import and an export, in the Prometheus text format."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import DISTRIBUTED, Client, assert_imported_exactly_once
from tests.e2e.servers import free_port

pytestmark = pytest.mark.e2e
ROWS = 3000


def scrape(port: int, path: str = "/metrics") -> dict[tuple[str, tuple], float]:
    reply = Client(port).get(path)
    assert reply.status == 200, reply.body[:300]
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(reply.text)
        for sample in family.samples
    }


def jobs(samples, kind: str, status: str) -> float:
    return samples[("collect_jobs", (("kind", kind), ("status", status)))]


def rows(samples, kind: str, status: str) -> float:
    return samples[("collect_rows", (("kind", kind), ("status", status)))]


def test_probes_answer_without_a_token(server):
    anonymous = server.client()
    healthz = anonymous.get("/healthz")
    assert (healthz.status, healthz.json()) == (200, {"status": "ok"})
    readyz = anonymous.get("/readyz")
    assert (readyz.status, readyz.json()) == (200, {"status": "ready"})


def test_metrics_before_and_after_an_import_and_its_export(start_server, tmp_path):
    worker_port = free_port()
    stack = start_server(COLLECT_WORKER_METRICS_PORT=str(worker_port))
    if DISTRIBUTED:  # one worker: the port is its alone
        stack.kill_workers()
        stack.add_worker()
    before = scrape(stack.port)
    assert jobs(before, "import", "completed") == 0
    assert rows(before, "import", "completed") == 0

    client = stack.client("olga")
    content = "id,submitted_at,answer\r\n" + "".join(
        f"{n},2025-03-{n % 28 + 1:02d}T10:00:00Z,ok {n}\r\n" for n in range(ROWS)
    )
    content += "bad,not a date,x\r\n"
    task_id = client.start_import(content.encode(), on_error="skip")["task_id"]
    job = client.wait_for_status(task_id, "completed")
    assert_imported_exactly_once(stack, job, ROWS)
    export = client.get("/api/export/?from_date=2025-03-01&to_date=2025-03-31").json()
    client.wait_for_status(export["task_id"], "completed")

    after = scrape(stack.port)
    assert jobs(after, "import", "completed") == 1
    assert jobs(after, "export", "completed") == 1
    assert rows(after, "import", "completed") == ROWS
    assert rows(after, "export", "completed") == ROWS
    assert after[("collect_rows_rejected", (("status", "completed"),))] == 1
    assert after[("collect_job_queued_seconds_count", ())] == 2
    # Batches are counted where they ran: this server (embedded) or the worker (distributed).
    runner = scrape(worker_port) if DISTRIBUTED else after
    assert runner[("collect_batch_duration_seconds_count", (("kind", "import"),))] >= 1
    assert runner[("collect_batch_duration_seconds_count", (("kind", "export"),))] >= 1
