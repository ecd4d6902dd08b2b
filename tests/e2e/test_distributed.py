"""End-to-end tests that only the distributed stack has: several `collect worker` processes
that can die on their own, and a broker that can lose its messages. Collected only when the
suite runs on PostgreSQL + Redis + Celery (see conftest)."""

import os
from pathlib import Path

import pytest

from tests.e2e.conftest import LEASE_SECONDS, assert_imported_exactly_once, wait_until

pytestmark = pytest.mark.e2e
TAKEOVER_TIMEOUT_S = LEASE_SECONDS + 30


def import_under_way(stack, username: str, path):
    """Start importing `path`; returns the client, the job id and the worker running it."""
    client = stack.client(username)
    task_id = client.start_import(path)["task_id"]
    client.wait_until_writing(task_id)
    worker = wait_until(lambda: stack.worker_running(task_id), timeout=10, what="its worker")
    return client, task_id, worker


def test_a_killed_workers_job_is_taken_over_and_every_row_lands_once(start_server, big_csv):
    stack = start_server()
    client, task_id, doomed = import_under_way(stack, "erin", big_csv.path)

    stack.kill_workers(doomed)
    rows_at_kill = stack.segment_stats(task_id).rows
    assert 0 < rows_at_kill < big_csv.rows, "the worker was not killed mid-import"

    job = client.wait_for_status(task_id, "completed", timeout=TAKEOVER_TIMEOUT_S + 60)
    assert_imported_exactly_once(stack, job, big_csv.rows)


def test_a_worker_runs_its_jobs_at_a_lower_priority_than_requests(start_server, big_csv):
    stack = start_server()
    client, task_id, worker = import_under_way(stack, "nina", big_csv.path)

    threads = Path(f"/proc/{worker.pid}/task")
    # The 19th field of a thread's stat is its nice value; the name before it is in ().
    nice = {int((t / "stat").read_text().rsplit(")", 1)[1].split()[16]) for t in threads.iterdir()}
    assert nice == {10}  # COLLECT_WORKER_NICE's default, the job's thread included
    # It leads its session (a process group of its own), so its autogroup is its alone.
    assert os.getsid(worker.pid) == worker.pid
    assert Path(f"/proc/{worker.pid}/autogroup").read_text().split()[-1] == "10"
    assert client.control(task_id, "terminate").status == 200


def test_a_worker_keeps_its_database_session_from_one_job_to_the_next(start_server):
    # One worker, one thread: every job is its. No sweeps, whose thread has a connection too.
    stack = start_server(COLLECT_WORKERS="1", COLLECT_SWEEP_SECONDS="3600")
    stack.kill_workers(stack.workers[1])
    worker, client = stack.workers[0], stack.client("olga")
    imports = iter(range(100))

    def imported() -> set[int]:
        """The worker's database sessions once an import has run."""
        first = next(imports) * 10  # other rows each time: the same bytes again are refused
        rows = b"".join(b"%d,2025-01-01T00:00:00Z\n" % n for n in range(first, first + 10))
        task_id = client.start_import(b"id,submitted_at\n" + rows)["task_id"]
        assert client.wait_for_status(task_id, "completed")["progress"]["rows_done"] == 10
        return stack.database_sessions(worker)

    sessions = imported()
    assert sessions and imported() == sessions  # no new connection for each job
    # Ended while the worker waits (a failover): the next job notices and connects again.
    ended = stack._query(
        "SELECT pg_terminate_backend(pid) FROM unnest(?::int[]) pid", (list(sessions),)
    )
    assert all(done for (done,) in ended)
    renewed = imported()
    assert renewed and not renewed & sessions
    assert imported() == renewed


def test_the_server_connects_to_the_broker_before_the_first_job(start_server):
    # The first wake-up waited 100 ms for the connection otherwise.
    stack = start_server()
    wait_until(lambda: stack.broker_connections(stack.process) > 0, timeout=10, what="it")


def test_a_pause_holds_across_workers(start_server, big_csv):
    stack = start_server()
    client, task_id, first_worker = import_under_way(stack, "frank", big_csv.path)

    client.control(task_id, "pause")
    paused = client.wait_for_status(task_id, "paused", timeout=10)
    assert stack.worker_running(task_id) is None  # the pause released the worker
    # The worker that ran it dies while it is paused: the other one must carry on.
    stack.kill_workers(first_worker)
    assert stack.segment_stats(task_id).rows == paused["progress"]["rows_done"]

    assert client.control(task_id, "resume").status == 200
    client.wait_until_writing(task_id, beyond=paused["progress"]["rows_done"])
    assert stack.worker_running(task_id) not in (None, first_worker)
    job = client.wait_for_status(task_id, "completed", timeout=120)
    assert_imported_exactly_once(stack, job, big_csv.rows)


def test_a_job_whose_message_the_broker_lost_still_runs(start_server):
    stack = start_server(COLLECT_REDISPATCH_SECONDS="2")
    client = stack.client("grace")
    stack.kill_workers()  # nobody takes the message before the broker "restarts"
    rows = [[str(n), f"2025-01-0{n % 9 + 1}T00:00:00Z"] for n in range(1000)]
    content = "id,submitted_at\r\n" + "".join(f"{a},{b}\r\n" for a, b in rows)
    task_id = client.start_import(content.encode())["task_id"]
    # The one wake-up message (sent from the server's dispatch thread), then gone.
    wait_until(lambda: stack.broker_queue_length() == 1, timeout=10, what="the wake-up")
    assert stack.broker_forget_queue() == 1

    stack.start_workers()
    job = client.wait_for_status(task_id, "completed", timeout=60)
    assert_imported_exactly_once(stack, job, 1000)
