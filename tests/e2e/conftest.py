"""Fixtures for the end-to-end tests: real `collect serve` processes, each with its own data
directory, spoken to over HTTP with the standard library only.

When the suite runs on the distributed stack (DATABASE_URL and CELERY_BROKER_URL set, see
tests/run.py), each "server" is that stack: `collect serve` with a fresh PostgreSQL database
of its own and WORKERS real `collect worker` processes on a queue of its own; the same tests
then hold the distributed deployment to the same rules.

A test that fails gets the log of every server it used attached to its report.
"""

import contextlib
import csv
import hashlib
import http.client
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.servers import OwnPostgres, OwnRedis, free_port

COLLECT = Path(sys.executable).parent / "collect"
DATABASE_URL = os.environ.get("DATABASE_URL", "")
DISTRIBUTED = DATABASE_URL.startswith("postgres")
WORKERS = 2
LEASE_SECONDS = 3  # how soon a stack takes back the job of a killed worker
BIG_FILE_ROWS = 1_000_000  # about 5 s of import: surely still running when a test acts on it
PAUSE_TIMEOUT_S = 1  # COLLECT_PAUSE_TIMEOUT of the `impatient_server`
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
HTTP_TIMEOUT_S = 120.0
LOG_TAIL_CHARS = 20_000
FINAL_STATES = frozenset({"completed", "failed", "terminated"})

# Distributed-only tests have nothing to test on the embedded stack (there are no worker
# processes to kill); they are not collected there rather than skipped.
collect_ignore_glob = [] if DISTRIBUTED else ["test_distributed*.py"]

# Servers whose logs belong in the report of a failing test (see pytest_runtest_makereport).
_servers_in_use: list["CollectServer"] = []


def assert_imported_exactly_once(server: "CollectServer", job: dict, rows: int) -> None:
    """The job completed and its segment holds each of the file's `rows` records (their
    first column is a unique id) exactly once."""
    assert job["status"] == "completed", job
    assert job["progress"]["rows_done"] == rows, job
    stats = server.segment_stats(job["task_id"])
    assert (stats.rows, stats.distinct_ids) == (rows, rows), (stats, job)


def assert_same_rows(csv_text: str, source: Path) -> None:
    """The CSV holds the source file's header and each of its records exactly as often,
    in any order (compared by digest, so that a million rows stay small)."""
    exported = io.StringIO(csv_text, newline="")
    with source.open(newline="", encoding="utf-8") as original:
        assert next(csv.reader(exported)) == next(csv.reader(original))
        assert _row_digests(exported) == _row_digests(original)


def _row_digests(lines) -> list[bytes]:
    return sorted(hashlib.sha1("\x1f".join(row).encode()).digest() for row in csv.reader(lines))


def wait_until(condition: Callable[[], Any], *, timeout: float, what: str, every=0.02) -> Any:
    """Poll `condition` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


# HTTP


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def multipart(
    fields: dict[str, str], *, file_field: str, filename: str, content: bytes | Path
) -> tuple[dict[str, str], Iterator[bytes]]:
    """Headers and streamed body of a multipart/form-data request with one file."""
    boundary = f"collect-e2e-{uuid.uuid4().hex}"
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    head += (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = len(content) if isinstance(content, bytes) else content.stat().st_size

    def body() -> Iterator[bytes]:
        yield head
        if isinstance(content, bytes):
            yield content
        else:
            with content.open("rb") as stream:
                while chunk := stream.read(1 << 20):
                    yield chunk
        yield tail

    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + size + len(tail)),
    }
    return headers, body()


@dataclass
class Client:
    """One user's view of a server's API (anonymous without a token)."""

    port: int
    token: str | None = None
    timeout: float = HTTP_TIMEOUT_S

    def request(self, method: str, path: str, body=None, headers=None) -> Reply:
        headers = dict(headers or {})
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return Reply(response.status, response.headers, response.read())
        finally:
            connection.close()

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str) -> Reply:
        return self.request("POST", path)

    def upload(
        self,
        content: bytes | Path,
        *,
        filename: str = "responses.csv",
        file_field: str = "file",
        **fields: str,
    ) -> Reply:
        headers, body = multipart(fields, file_field=file_field, filename=filename, content=content)
        return self.request("POST", "/api/upload-file/", body=body, headers=headers)

    def start_import(self, content: bytes | Path, **fields: str) -> dict:
        """Upload a file and return its job, which must have been accepted."""
        reply = self.upload(content, **fields)
        assert reply.status == 202, (reply.status, reply.body[:500])
        return reply.json()

    def job(self, task_id: str) -> dict:
        reply = self.get(f"/api/tasks/{task_id}/")
        assert reply.status == 200, (reply.status, reply.body[:500])
        return reply.json()

    def control(self, task_id: str, action: str, *, brief_path: bool = False) -> Reply:
        """pause, resume or terminate, by the resource path or the brief's (pause, resume,
        revoke)."""
        if brief_path:
            return self.post(f"/api/{action}/{task_id}/")
        return self.post(f"/api/tasks/{task_id}/{action}/")

    def wait_for_status(self, task_id: str, *statuses: str, timeout: float = 60.0) -> dict:
        """The job, once it is in one of `statuses`; fails early if it ends in another."""

        def reached() -> dict | None:
            job = self.job(task_id)
            if job["status"] in statuses:
                return job
            assert job["status"] not in FINAL_STATES, f"job ended {job['status']}: {job}"
            return None

        return wait_until(reached, timeout=timeout, what=f"job {task_id} to be {statuses}")

    def wait_until_writing(self, task_id: str, *, beyond: int = 0, timeout: float = 60.0) -> dict:
        """The job once it runs and has committed more than `beyond` rows."""

        def writing() -> dict | None:
            job = self.job(task_id)
            assert job["status"] in ("queued", "running"), job
            running = job["status"] == "running"
            return job if running and job["progress"]["rows_done"] > beyond else None

        return wait_until(writing, timeout=timeout, what=f"job {task_id} to write rows")


# Servers


@dataclass
class SegmentStats:
    rows: int
    distinct_ids: int  # distinct values of the first column


class _PortTaken(Exception):
    pass


@dataclass
class CollectServer:
    data_dir: Path
    port: int
    log_path: Path
    env: dict[str, str]
    process: subprocess.Popen | None = None
    workers: list[subprocess.Popen] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)
    own_workers: bool = True  # on the distributed stack: start WORKERS of its own
    _log_start: int = 0

    def start(self) -> "CollectServer":
        _servers_in_use.append(self)
        for _ in range(3):  # another process may take the free port before the server does
            command = [str(COLLECT), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
            self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
            self.process = self._spawn(command, self.log_path)
            try:
                wait_until(
                    self._ready, timeout=READY_TIMEOUT_S, what=f"{self} to answer", every=0.1
                )
                break
            except _PortTaken:
                self.port = free_port()
        else:
            raise AssertionError(f"{self}: no free port found")
        if DISTRIBUTED and self.own_workers:
            self.start_workers()
        return self

    def _spawn(self, command: list[str], log_path: Path) -> subprocess.Popen:
        with log_path.open("ab") as log:  # a process group of its own: kill -9 takes it whole
            return subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def start_workers(self) -> None:
        self.workers = []
        self._spawn_workers(range(WORKERS))

    def add_worker(self) -> subprocess.Popen:
        """One more `collect worker` process, once it is ready."""
        number = len(list(self.log_path.parent.glob(f"{self.log_path.stem}.worker*.log")))
        return self._spawn_workers([number])[0]

    def _spawn_workers(self, numbers) -> list[subprocess.Popen]:
        logs = [self.log_path.with_suffix(f".worker{n}.log") for n in numbers]
        starts = [log.stat().st_size if log.exists() else 0 for log in logs]
        spawned = [self._spawn([str(COLLECT), "worker"], log) for log in logs]
        self.workers += spawned

        def all_ready() -> bool:
            for worker, log, start in zip(spawned, logs, starts, strict=True):
                if worker.poll() is not None:
                    raise AssertionError(f"a worker exited:\n{_read(log, start)}")
            return all(
                " ready." in _read(log, start) for log, start in zip(logs, starts, strict=True)
            )

        wait_until(all_ready, timeout=READY_TIMEOUT_S, what="the workers", every=0.1)
        return spawned

    def _ready(self) -> bool:
        """Up once it has bound its port (waitress says so) and refuses an anonymous call."""
        output = self.log(since=self._log_start)
        if self.process.poll() is not None:
            if "address already in use" in output.lower():
                raise _PortTaken(self.port)
            raise AssertionError(f"{self} exited with {self.process.returncode}:\n{output}")
        if f"Serving on http://127.0.0.1:{self.port}" not in output:
            return False
        try:
            return Client(self.port, timeout=5).get("/api/tasks/").status == 401
        except OSError:
            return False

    def stop(self) -> None:
        """Stop as an operator would (SIGTERM), and make sure it is gone."""
        for process in [*self.workers, self.process]:
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGCONT)  # a frozen one could not stop
                os.killpg(process.pid, signal.SIGTERM)
        for process in [*self.workers, self.process]:
            if process is None:
                continue
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def kill_hard(self) -> None:
        """kill -9 of the server and its workers: no shutdown code runs."""
        for process in [self.process, *self.workers]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def worker_running(self, task_id: str) -> subprocess.Popen | None:
        """The `collect worker` process that owns the job now (distributed), if any."""
        owner = self._query("SELECT worker FROM jobs_job WHERE id = ?", (str(uuid.UUID(task_id)),))
        if not owner or not owner[0][0]:
            return None
        pid = int(owner[0][0].split("/")[1])  # host/pid/thread/run, see runner.worker_name
        return next((w for w in self.workers if w.pid == pid and w.poll() is None), None)

    def freeze(self, worker: subprocess.Popen) -> None:
        """SIGSTOP: the worker stops where it is, holding what it holds (a paused VM)."""
        os.killpg(worker.pid, signal.SIGSTOP)

    def thaw(self, worker: subprocess.Popen) -> None:
        os.killpg(worker.pid, signal.SIGCONT)

    def database_sessions(self, process: subprocess.Popen) -> set[int]:
        """The PostgreSQL backends (pids) serving `process`'s connections."""
        query = "SELECT pid FROM pg_stat_activity WHERE client_port = ANY(%s)"
        return {pid for (pid,) in self._query(query, (sorted(_local_ports(process)),))}

    def broker_connections(self, process: subprocess.Popen) -> int:
        """How many connections `process` has open to the broker."""
        import redis

        broker = redis.Redis.from_url(self.env["CELERY_BROKER_URL"])
        ports = _local_ports(process)
        return sum(
            int(client["addr"].rsplit(":", 1)[1]) in ports for client in broker.client_list()
        )

    def end_worker_session(self, task_id: str) -> bool:
        """pg_terminate_backend of the database session of the job's worker, as a failover
        or a network blip would end it; True if there was one."""
        owner = self._query(
            "SELECT worker_session FROM jobs_job WHERE id = ?", (str(uuid.UUID(task_id)),)
        )
        session = owner[0][0] if owner else ""
        if not session:
            return False
        pid = int(session.split("@")[0])
        return bool(self._query("SELECT pg_terminate_backend(?)", (pid,))[0][0])

    def kill_workers(self, *workers: subprocess.Popen) -> None:
        """kill -9 of these workers (all of them if none is named); they leave `workers`."""
        for worker in workers or list(self.workers):
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
            self.workers.remove(worker)

    def broker_queue_length(self) -> int:
        import redis

        broker = redis.Redis.from_url(self.env["CELERY_BROKER_URL"])
        return broker.llen(self.env["COLLECT_QUEUE"])

    def broker_forget_queue(self) -> int:
        """Drop the messages waiting in this stack's queue, as a broker restart would; returns
        how many there were."""
        import redis

        broker = redis.Redis.from_url(self.env["CELERY_BROKER_URL"])
        queue = self.env["COLLECT_QUEUE"]
        waiting = broker.llen(queue)
        broker.delete(queue)
        return waiting

    def client(self, username: str | None = None) -> Client:
        """A client for `username` (created with `collect token` if new), or anonymous."""
        if username is None:
            return Client(self.port)
        if username not in self.tokens:
            command = [str(COLLECT), "token", username]
            result = subprocess.run(
                command, env=self.env, capture_output=True, text=True, timeout=60
            )
            assert result.returncode == 0, f"{command} failed:\n{result.stderr}"
            self.tokens[username] = result.stdout.strip().splitlines()[-1]
        return Client(self.port, self.tokens[username])

    def log(self, since: int = 0) -> str:
        """The end of the server's output, from byte `since` on."""
        return _read(self.log_path, since)

    def logs(self) -> str:
        """The server's output and its workers'."""
        workers = sorted(self.log_path.parent.glob(f"{self.log_path.stem}.worker*.log"))
        return "\n".join(f"--- {path.name}\n{_read(path)}" for path in [self.log_path, *workers])

    # The server's database, read-only.

    def _query(self, sql: str, parameters=()) -> list[tuple]:
        if DISTRIBUTED:
            import psycopg

            with psycopg.connect(self.env["DATABASE_URL"]) as database:
                return database.execute(sql.replace("?", "%s"), parameters).fetchall()
        uri = f"file:{self.data_dir / 'collect.sqlite3'}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as database:
            return database.execute(sql, parameters).fetchall()

    def database_bytes(self) -> int:
        """What the stack's database takes on disk now."""
        if DISTRIBUTED:
            return self._query("SELECT pg_database_size(current_database())")[0][0]
        files = self.data_dir.glob("collect.sqlite3*")  # with its -wal and -shm
        return sum(path.stat().st_size for path in files)

    def segment_exists(self, task_id: str) -> bool:
        if DISTRIBUTED:
            sql = "SELECT count(*) FROM pg_tables WHERE tablename = ?"
        else:
            sql = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
        return self._query(sql, (segment_table(task_id),))[0][0] == 1

    def segment_stats(self, task_id: str) -> SegmentStats:
        table = segment_table(task_id)
        return SegmentStats(*self._query(f"SELECT count(*), count(DISTINCT c1) FROM {table}")[0])

    def segment_ids(self, task_id: str) -> list[str]:
        """The first column of the rows written, sorted: on PostgreSQL the rows are in the
        heap's order, which is the file's but for a row COPY put in room left on an earlier
        page, so only what was written is compared, each row as often as it was."""
        return sorted(value for (value,) in self._query(f"SELECT c1 FROM {segment_table(task_id)}"))

    def __str__(self) -> str:
        return f"collect serve on port {self.port} (data in {self.data_dir})"


def _local_ports(process: subprocess.Popen) -> set[int]:
    """The local ports of the process's TCP sockets, by their inodes (see proc(5))."""
    inodes = set()
    for fd in Path(f"/proc/{process.pid}/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):
            if (target := os.readlink(fd)).startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()  # local address, remote address, ..., inode
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _read(path: Path, since: int = 0) -> str:
    if not path.exists():
        return ""
    with path.open("rb") as log:
        log.seek(since)
        return log.read().decode(errors="replace")[-LOG_TAIL_CHARS:]


def segment_table(task_id: str) -> str:
    return f"segment_{uuid.UUID(task_id).hex}"


def server_env(data_dir: Path, **settings: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")}
    for key in ("DATABASE_URL", "COLLECT_DISPATCH", "COLLECT_QUEUE"):
        env.pop(key, None)
    if DISTRIBUTED:  # one database and one queue per stack, the same again after a restart
        suffix = uuid.uuid5(uuid.NAMESPACE_URL, str(data_dir)).hex[:8]
        stack = f"{_database_name(DATABASE_URL)}_e2e_{suffix}"
        env["DATABASE_URL"] = _with_database(DATABASE_URL, stack)
        env["COLLECT_QUEUE"] = stack
        env["COLLECT_LEASE_SECONDS"] = str(LEASE_SECONDS)
    else:
        env.pop("CELERY_BROKER_URL", None)
    # INFO: readiness is read from the server's log (see CollectServer._ready).
    return {**env, "COLLECT_DATA_DIR": str(data_dir), "COLLECT_LOG_LEVEL": "INFO", **settings}


def _database_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _with_database(url: str, name: str) -> str:
    return f"{url.rsplit('/', 1)[0]}/{name}"


def _create_database(url: str) -> None:
    import psycopg

    with psycopg.connect(_with_database(url, "postgres"), autocommit=True) as admin:
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (_database_name(url),)
        ).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{_database_name(url)}"')


def _drop_database(url: str) -> None:
    import psycopg

    with psycopg.connect(_with_database(url, "postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{_database_name(url)}" WITH (FORCE)')


ServerFactory = Callable[..., CollectServer]


@contextlib.contextmanager
def _server_factory(tmp_dir: Path) -> Iterator[ServerFactory]:
    started: list[CollectServer] = []

    def start(data_dir: Path | None = None, **settings: str) -> CollectServer:
        """A new server; on `data_dir` if given (a restart), else on a fresh one."""
        number = len(started) + 1
        data_dir = data_dir or tmp_dir / f"data-{number}"
        data_dir.mkdir(exist_ok=True)
        server = CollectServer(
            data_dir=data_dir,
            port=free_port(),
            log_path=tmp_dir / f"server-{number}.log",
            env=server_env(data_dir, **settings),
        )
        if DISTRIBUTED:
            _create_database(server.env["DATABASE_URL"])
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in started:
            server.stop()
            _servers_in_use.remove(server)
        for server in started:  # its database and uploads run to gigabytes; its log stays
            shutil.rmtree(server.data_dir, ignore_errors=True)
            if DISTRIBUTED:
                _drop_database(server.env["DATABASE_URL"])


@contextlib.contextmanager
def another_web(stack: CollectServer, data_dir: Path) -> Iterator[CollectServer]:
    """One more `collect serve` of a distributed `stack` (its database, queue, settings and
    tokens) on a data directory of its own, with no workers: a web process elsewhere."""
    data_dir.mkdir(exist_ok=True)
    web = CollectServer(
        data_dir=data_dir,
        port=free_port(),
        log_path=stack.log_path.with_name(f"{data_dir.name}.log"),
        env={**stack.env, "COLLECT_DATA_DIR": str(data_dir)},
        tokens=stack.tokens,
        own_workers=False,
    )
    try:
        yield web.start()
    finally:
        web.stop()
        _servers_in_use.remove(web)


@pytest.fixture
def start_server(tmp_path) -> Iterator[ServerFactory]:
    """Starts servers for one test (keyword arguments are extra environment settings), and
    stops them all after it."""
    with _server_factory(tmp_path) as start:
        yield start


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[CollectServer]:
    """One server shared by a module's tests that do not disturb each other."""
    with _server_factory(tmp_path_factory.mktemp("shared-server")) as start:
        yield start()


@pytest.fixture(scope="module")
def impatient_server(tmp_path_factory) -> Iterator[CollectServer]:
    """A server that terminates jobs left paused longer than PAUSE_TIMEOUT_S."""
    with _server_factory(tmp_path_factory.mktemp("impatient-server")) as start:
        yield start(COLLECT_PAUSE_TIMEOUT=str(PAUSE_TIMEOUT_S))


@pytest.fixture(scope="module")
def alice(server) -> Client:
    return server.client("alice")


@pytest.fixture(scope="module")
def bob(server) -> Client:
    return server.client("bob")


@dataclass(frozen=True)
class GeneratedCsv:
    path: Path
    rows: int  # on lines 2..rows + 1, after the header


def generate_csv(directory: Path, rows: int) -> GeneratedCsv:
    """`rows` generated form responses in `directory`/responses.csv."""
    path = directory / "responses.csv"
    subprocess.run(
        [str(COLLECT), "generate", str(rows), "-o", str(path)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return GeneratedCsv(path, rows)


@pytest.fixture(scope="session")
def big_csv(tmp_path_factory) -> Iterator[GeneratedCsv]:
    """Generated form responses, enough that their import runs for seconds."""
    generated = generate_csv(tmp_path_factory.mktemp("files"), BIG_FILE_ROWS)
    yield generated
    generated.path.unlink()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for server in _servers_in_use:
            report.sections.append((f"log of {server}", server.logs()))


@pytest.fixture
def own_postgres():
    """A PostgreSQL cluster of the test's own, to break."""
    cluster = OwnPostgres().init()
    yield cluster
    cluster.destroy()


@pytest.fixture
def own_redis(tmp_path):
    """A Redis server of the test's own, to break."""
    broker = OwnRedis(tmp_path).start()
    yield broker
    broker.stop()
