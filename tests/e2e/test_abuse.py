"""Hostile and heavy use of a running Collect, on either stack (PRODUCT.md section 7): slow
clients, slow readers, one user's flood of jobs, a file of nothing but bad rows, and what
the server itself answers. Ordinary requests must go on answering within a second or two."""

import contextlib
import os
import socket
import stat
import threading
import time
from datetime import datetime

import pytest

from tests.e2e.conftest import DISTRIBUTED, Client, wait_until

pytestmark = pytest.mark.e2e
PROMPT_S = 2.0  # "within a second or two"
SLOW_CLIENTS = 300
SLOW_READERS = 16
FLOOD_LIMIT = 6


def answers_promptly(client: Client, path: str = "/api/tasks/") -> None:
    quick = Client(client.port, client.token, timeout=PROMPT_S)
    for _ in range(3):
        reply = quick.get(path)
        assert reply.status == 200, reply.body[:200]
        time.sleep(0.3)


def test_hundreds_of_trickling_connections_leave_the_service_reachable(server, alice):
    trickling = []
    for _ in range(SLOW_CLIENTS):  # slowloris: a request head that never ends
        connection = socket.create_connection(("127.0.0.1", server.port))
        connection.sendall(b"POST /api/upload-file/ HTTP/1.1\r\nHost: x\r\n")
        trickling.append(connection)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(2):
            for connection in trickling:
                with contextlib.suppress(OSError):  # closed by the server, as it should
                    connection.sendall(b"X-Slow: 1\r\n")

    threading.Thread(target=trickle, daemon=True).start()
    try:
        answers_promptly(alice)
        # And the trickling heads are cut off, not kept for ever.
        wait_until(lambda: _closed_by_server(trickling[0]), timeout=30, what="a head cut off")
        answers_promptly(alice)
    finally:
        stop.set()
        for connection in trickling:
            connection.close()


def _closed_by_server(connection: socket.socket) -> bool:
    connection.settimeout(0.05)
    try:
        return connection.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_slow_readers_of_long_answers_hold_up_no_one(server, alice, bob):
    rows = "".join(f"{n},not a date,{'x' * 200}\r\n" for n in range(20_000))
    content = f"id,submitted_at,note\r\n{rows}".encode()
    job = alice.start_import(content, dataset="bad-rows", on_error="skip")
    alice.wait_for_status(job["task_id"], "completed")

    readers = []
    for _ in range(SLOW_READERS):  # ask for the rejected rows, then read nothing
        reader = socket.create_connection(("127.0.0.1", server.port))
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        request = (
            f"GET /api/tasks/{job['task_id']}/errors/ HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Token {alice.token}\r\n\r\n"
        )
        reader.sendall(request.encode())
        readers.append(reader)
    try:
        time.sleep(1)  # every one of them is being answered by now
        answers_promptly(bob)
    finally:
        for reader in readers:
            reader.close()


def test_one_users_flood_of_jobs_is_capped_and_does_not_starve_another(start_server, big_csv):
    stack = start_server(COLLECT_MAX_ACTIVE_JOBS=str(FLOOD_LIMIT))
    flooder, other = stack.client("flooder"), stack.client("other")
    imported = flooder.start_import(big_csv.path)["task_id"]
    flooder.wait_for_status(imported, "completed", timeout=180)
    everything = {"from_date": "2000-01-01", "to_date": "2100-01-01"}
    query = "/api/export/?" + "&".join(f"{key}={value}" for key, value in everything.items())
    flood = [flooder.get(query).json()["task_id"] for _ in range(FLOOD_LIMIT)]
    refused = flooder.get(query)
    assert refused.status == 429 and refused.json()["limit"] == FLOOD_LIMIT

    small = other.start_import(b"id,submitted_at\r\n1,2025-01-01\r\n")["task_id"]
    done = other.wait_for_status(small, "completed", timeout=120)
    assert done["progress"]["rows_done"] == 1
    # Queued after the whole flood, it was taken before some of it: first in, first out
    # would have started every export of the flood first.
    taken = datetime.fromisoformat(done["started_at"])
    started_later = [
        task
        for task in flood
        if (started := flooder.job(task)["started_at"]) is None
        or datetime.fromisoformat(started) > taken
    ]
    assert started_later, "the other user's job waited for the whole flood to start"
    for task in flood:
        flooder.control(task, "terminate")


def test_a_file_of_nothing_but_bad_rows_costs_the_database_little(start_server, tmp_path):
    stack = start_server()
    client = stack.client("careless")
    source = tmp_path / "bad.csv"
    with source.open("w") as out:  # 1M rows, every one with a field too many
        out.write("id,submitted_at\n")
        for number in range(1_000_000):
            out.write(f"{number},2025-01-01,extra\n")
    before = stack.database_bytes()

    task_id = client.start_import(source, on_error="skip")["task_id"]
    job = client.wait_for_status(task_id, "completed", timeout=300)
    assert (job["progress"]["rows_done"], job["progress"]["rows_rejected"]) == (0, 1_000_000)
    grown = stack.database_bytes() - before
    assert grown < 2 * source.stat().st_size, (grown, source.stat().st_size)
    listed = client.get(f"/api/tasks/{task_id}/errors/").text.splitlines()
    assert len(listed) == 1 + 10_000 + 1  # the header, the rows kept, and what was not
    assert (
        listed[-1]
        == ",990000 more rejected rows were counted but not kept (at most 10000 are kept),"
    )


def test_the_server_answers_its_own_refusals_in_json(server, alice):
    reply = alice.request("POST", "/api/upload-file/", headers={"Content-Length": str(10**15)})
    assert reply.status == 413
    assert reply.headers["Content-Type"] == "application/json"
    assert "detail" in reply.json()
    unknown = alice.get("/api/no-such-thing/")
    assert (unknown.status, unknown.headers["Content-Type"]) == (404, "application/json")


def test_the_data_directory_is_the_services_alone(server):
    mode = stat.S_IMODE(os.stat(server.data_dir).st_mode)
    assert mode == 0o700, oct(mode)
    if not DISTRIBUTED:
        database = server.data_dir / "collect.sqlite3"
        assert stat.S_IMODE(database.stat().st_mode) == 0o600
