"""Faults of the machinery on the distributed stack (PRODUCT.md section 1): a dropped database
connection, a database that crashes and comes back, a broker killed and restarted, a worker
that freezes. The job keeps its rows and its file and ends with every row exactly once; every
process stays alive. Servers that a test breaks are its own (tests/e2e/servers.py)."""

import time

import pytest

from collect.jobs.runner import LOST_OWNERSHIP
from tests.e2e.conftest import (
    LEASE_SECONDS,
    assert_imported_exactly_once,
    assert_same_rows,
    segment_table,
    wait_until,
)

pytestmark = pytest.mark.e2e
OUTAGE_S = 3
RECOVERY_TIMEOUT_S = 180
# A frozen worker's job is taken back once its lease has run out and a sweep has seen it.
TAKEOVER_S = LEASE_SECONDS + 5


def import_under_way(stack, client, path, **fields):
    """Start importing `path`; returns the job id and the worker running it."""
    task_id = client.start_import(path, **fields)["task_id"]
    client.wait_until_writing(task_id)
    worker = wait_until(lambda: stack.worker_running(task_id), timeout=10, what="its worker")
    return task_id, worker


def assert_all_alive(stack) -> None:
    exited = [worker.pid for worker in stack.workers if worker.poll() is not None]
    assert not exited, f"workers {exited} exited:\n{stack.logs()}"
    assert stack.process.poll() is None, "the web server exited"


def assert_a_new_job_runs(stack, client) -> None:
    """The stack still takes work: each worker process consumes what comes."""
    content = "id,submitted_at\r\n" + "".join(f"{n},2025-01-01\r\n" for n in range(100))
    jobs = [client.start_import(content.encode(), dataset=f"after-{n}") for n in range(4)]
    for job in jobs:
        done = client.wait_for_status(job["task_id"], "completed", timeout=60)
        assert done["progress"]["rows_done"] == 100


def test_a_dropped_connection_mid_import_is_not_the_jobs_failure(start_server, big_csv):
    stack = start_server()
    client = stack.client("ivy")
    task_id, _ = import_under_way(stack, client, big_csv.path)

    assert stack.end_worker_session(task_id), "the worker had no database session"
    assert stack.segment_stats(task_id).rows < big_csv.rows, "the import was already done"

    job = client.wait_for_status(task_id, "completed", timeout=RECOVERY_TIMEOUT_S)
    assert_imported_exactly_once(stack, job, big_csv.rows)
    assert job["retry"] is None and job["error"] is None
    assert "continues from its checkpoint later" in stack.logs()
    assert_all_alive(stack)


def test_a_dropped_connection_mid_export_is_not_the_jobs_failure(start_server, big_csv):
    stack = start_server()
    client = stack.client("jack")
    imported = client.start_import(big_csv.path)
    client.wait_for_status(imported["task_id"], "completed", timeout=RECOVERY_TIMEOUT_S)

    body = b'{"dataset": "responses", "from": "2000-01-01", "to": "2100-01-01", "raw": true}'
    reply = client.request(
        "POST", "/api/exports/", body=body, headers={"Content-Type": "application/json"}
    )
    assert reply.status == 202, reply.body
    task_id = reply.json()["task_id"]
    client.wait_until_writing(task_id)
    assert stack.end_worker_session(task_id), "the export's worker had no database session"

    job = client.wait_for_status(task_id, "completed", timeout=RECOVERY_TIMEOUT_S)
    assert job["progress"]["rows_done"] == big_csv.rows
    download = client.get(f"/api/tasks/{task_id}/download/")
    assert download.status == 200
    assert_same_rows(download.text, big_csv.path)
    assert_all_alive(stack)


def test_a_database_crash_and_restart_mid_import(own_postgres, start_server, big_csv):
    stack = start_server(DATABASE_URL=own_postgres.url("collect"))
    client = stack.client("kate")
    task_id, _ = import_under_way(stack, client, big_csv.path)

    own_postgres.stop("immediate")
    down = client.get("/api/tasks/")
    assert down.status == 503, down.body
    assert down.headers["Content-Type"] == "application/json"
    assert "unreachable" in down.json()["detail"] and int(down.headers["Retry-After"]) > 0
    time.sleep(OUTAGE_S)
    own_postgres.start()

    job = client.wait_for_status(task_id, "completed", timeout=RECOVERY_TIMEOUT_S)
    assert_imported_exactly_once(stack, job, big_csv.rows)
    assert_all_alive(stack)
    assert_a_new_job_runs(stack, client)


def test_a_broker_killed_and_restarted_mid_import(own_redis, start_server, big_csv):
    stack = start_server(CELERY_BROKER_URL=own_redis.url, COLLECT_REDISPATCH_SECONDS="2")
    client = stack.client("liam")
    task_id, _ = import_under_way(stack, client, big_csv.path)  # one slot busy, three free

    own_redis.kill()
    time.sleep(OUTAGE_S)
    own_redis.start()

    job = client.wait_for_status(task_id, "completed", timeout=RECOVERY_TIMEOUT_S)
    assert_imported_exactly_once(stack, job, big_csv.rows)
    assert_a_new_job_runs(stack, client)
    assert_all_alive(stack)


def test_a_broker_that_stops_answering_holds_up_no_request(own_redis, start_server, big_csv):
    stack = start_server(CELERY_BROKER_URL=own_redis.url)
    client = stack.client("nina")
    quick = type(client)(client.port, client.token, timeout=5)

    own_redis.freeze()  # a partition: connections hang instead of being refused
    try:
        task_id = quick.start_import(big_csv.path)["task_id"]
        assert quick.get(f"/api/tasks/{task_id}/").json()["status"] == "queued"
        assert quick.get("/api/tasks/").status == 200
    finally:
        own_redis.thaw()
    job = client.wait_for_status(task_id, "completed", timeout=RECOVERY_TIMEOUT_S)
    assert_imported_exactly_once(stack, job, big_csv.rows)
    assert_all_alive(stack)


def test_a_broker_restart_while_every_slot_is_busy(own_redis, start_server, big_csv):
    stack = start_server(CELERY_BROKER_URL=own_redis.url, COLLECT_REDISPATCH_SECONDS="2")
    client = stack.client("mia")
    jobs = []
    for n in range(4):  # paused as they come, then let go together: all four run at once
        jobs.append(client.start_import(big_csv.path, dataset=f"copy-{n}")["task_id"])
        assert client.control(jobs[-1], "pause").status == 200
    for task_id in jobs:
        client.wait_for_status(task_id, "paused")
    for task_id in jobs:
        assert client.control(task_id, "resume").status == 200
    for task_id in jobs:
        client.wait_until_writing(task_id, timeout=120)

    own_redis.kill()
    time.sleep(OUTAGE_S)
    own_redis.start()

    for task_id in jobs:
        job = client.wait_for_status(task_id, "completed", timeout=RECOVERY_TIMEOUT_S)
        assert_imported_exactly_once(stack, job, big_csv.rows)
    assert_a_new_job_runs(stack, client)
    assert_all_alive(stack)


def test_a_frozen_worker_holds_up_no_one_and_writes_nothing_when_it_wakes(start_server, big_csv):
    stack = start_server()
    stack.kill_workers(stack.workers[1])  # one worker left, with both jobs on it
    client = stack.client("noah")
    doomed, _ = import_under_way(stack, client, big_csv.path, dataset="doomed")
    survivor, frozen = import_under_way(stack, client, big_csv.path, dataset="survivor")
    assert stack.worker_running(doomed) is frozen

    stack.freeze(frozen)
    stack.add_worker()
    # Control calls and status reads answer within a lease, whatever the frozen worker holds.
    quick = type(client)(client.port, client.token, timeout=LEASE_SECONDS)
    assert quick.get(f"/api/tasks/{survivor}/").status == 200
    reply = wait_until(
        lambda: (answer := quick.control(doomed, "terminate")).status == 200 and answer,
        timeout=TAKEOVER_S,
        what="the terminate call to be taken",
        every=0.5,
    )
    assert reply.json()["status"] in ("terminating", "terminated")

    terminated = client.wait_for_status(doomed, "terminated", timeout=TAKEOVER_S + 30)
    assert terminated["termination_reason"] == "terminated by user"
    assert not stack.segment_exists(doomed)
    job = client.wait_for_status(survivor, "completed", timeout=TAKEOVER_S + RECOVERY_TIMEOUT_S)
    assert_imported_exactly_once(stack, job, big_csv.rows)

    # The frozen worker wakes up: its session was ended, so it can write nothing more.
    stopped_before = stack.logs().count(LOST_OWNERSHIP)
    stack.thaw(frozen)
    wait_until(
        lambda: stack.logs().count(LOST_OWNERSHIP) >= stopped_before + 2,
        timeout=30,
        what="both runs of the thawed worker to stop",
    )
    assert_imported_exactly_once(stack, client.job(survivor), big_csv.rows)
    assert not stack.segment_exists(doomed), f"{segment_table(doomed)} came back"
    assert_all_alive(stack)
