"""Collect's benchmark: one command, every figure of PRODUCT.md section 6 that it can measure
here, each next to its baseline measured in the same run.

    .venv/bin/python bench/run.py [--rows 1000000] [--repeat 3] [--only postgres|sqlite]
                                  [--data realistic|tidy|both|shapes]
                                  [--memory | --memory-only] [--memory-mb 100 2000]

It generates the rows of each data set (once, cached in bench/out/): "realistic" (the
default's first: `collect generate --realistic`, answers as people type them, with quoted
commas, two-line answers, many scripts and an unreadable date every 100,000 rows) and
"tidy" (`collect generate`'s rows); `--data shapes` takes five shapes of form responses
made apart from `collect generate` instead (bench/shapes.py). Then it measures, per data
set, `psql \\copy` and Collect on PostgreSQL (serve + 2 Celery workers) end to end, a bare
csv.reader + executemany loop and Collect on SQLite (the embedded server), the uploads' own
MB/s, pause latency (API call → `paused`), rollback time of a terminated import, status
reads under two imports, and the peak RSS of the web and worker processes. With --memory
it also measures peak RSS against file size (bench/memory.py). Prints a table and writes it
to bench/out/results.md. Timings are only reported, never asserted.
"""

import argparse
import contextlib
import csv
import itertools
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import NamedTuple

import memory
import shapes

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
BIN = Path(sys.executable).parent
ORIGINAL_RATE = 950  # rows/s of the brief's original implementation, as it measured itself
POSTGRES_URL = os.environ.get("COLLECT_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("COLLECT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


# Processes and HTTP


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Stack:
    """A running Collect: `collect serve`, plus Celery workers when distributed."""

    def __init__(self, env: dict[str, str], workers: int = 0) -> None:
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logs = Path(env["COLLECT_DATA_DIR"])
        self.web = self._spawn("web", "serve", "--port", str(self.port))
        self.workers: list[subprocess.Popen] = []
        try:
            self._wait_until_up()  # the server migrates the database first
            self.workers = [self._spawn(f"worker{n}", "worker") for n in range(workers)]
            self.token = self._token()
        except BaseException:
            self.stop()
            raise
        time.sleep(3 if workers else 0)  # let the workers connect to the broker

    def _spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        return subprocess.Popen(
            [str(BIN / "collect"), *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _token(self) -> str:
        done = subprocess.run(
            [str(BIN / "collect"), "token", "bench"],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip().splitlines()[-1]

    def _wait_until_up(self) -> None:
        deadline, last_error = time.monotonic() + 60, None
        while time.monotonic() < deadline and self.web.poll() is None:
            try:
                urllib.request.urlopen(self.url + "/api/schema/", timeout=5).close()
                return
            except (urllib.error.URLError, ConnectionError) as error:
                last_error = error
                time.sleep(0.2)
        log = (self.logs / "web.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the server did not come up: {last_error}; its log ends:\n{log}")

    def request(self, method: str, path: str, body: bytes | None = None, headers=None) -> dict:
        request = urllib.request.Request(
            self.url + path,
            data=body,
            method=method,
            headers={"Authorization": f"Token {self.token}", **(headers or {})},
        )
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.loads(response.read())

    def upload(self, path: Path, dataset: str) -> dict:
        """POST the file as multipart, streamed from disk; bad rows are skipped, and the
        same file is imported again each time it is sent (force)."""
        boundary = uuid.uuid4().hex
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="dataset"\r\n\r\n{dataset}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="on_error"\r\n\r\nskip\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="force"\r\n\r\ntrue\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{path.name}"\r\nContent-Type: text/csv\r\n\r\n'
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        length = len(head) + path.stat().st_size + len(tail)

        def body():
            yield head
            with open(path, "rb") as stream:
                while chunk := stream.read(1 << 20):
                    yield chunk
            yield tail

        request = urllib.request.Request(
            self.url + "/api/upload-file/",
            data=body(),
            method="POST",
            headers={
                "Authorization": f"Token {self.token}",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(length),
            },
        )
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.loads(response.read())

    def control(self, task_id: str, action: str) -> bool:
        """pause, resume or terminate; False if the job's state refused it (409)."""
        try:
            self.request("POST", f"/api/tasks/{task_id}/{action}/")
        except urllib.error.HTTPError as error:
            if error.code != 409:
                raise
            return False
        return True

    def job(self, task_id: str) -> dict:
        return self.request("GET", f"/api/tasks/{task_id}/")

    def wait_for(
        self, task_id: str, states: set[str], timeout: float = 600, every: float = 0.1
    ) -> dict:
        """Polls gently by default: a busy poll would take CPU from the job it measures."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(task_id)
            if job["status"] in states:
                return job
            time.sleep(every)
        raise RuntimeError(f"task {task_id} did not reach {states}: {job}")

    def peak_rss_mb(self) -> dict[str, float]:
        return {
            "web": _peak_rss(self.web.pid),
            "workers": max((_tree_peak_rss(w.pid) for w in self.workers), default=0.0),
        }

    def stop(self) -> None:
        for process in [self.web, *self.workers]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in [self.web, *self.workers]:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def _peak_rss(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _tree_peak_rss(pid: int) -> float:
    """The largest peak RSS among a process and its children (Celery's pool processes)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    pids = [pid, *map(int, children.read_text().split())] if children.exists() else [pid]
    return max(_peak_rss(p) for p in pids)


def seconds_between(job: dict, start: str, end: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(job[end]) - datetime.fromisoformat(job[start])).total_seconds()


# The measurements


class DataSet(NamedTuple):
    name: str
    path: Path
    rows: int  # records in all
    bad: int  # of them, rows with an unreadable date, which an import rejects
    width: int


def measure_import(stack: Stack, data: DataSet, dataset: str) -> tuple[float, float]:
    """Records/s from the upload's arrival (job created) to the job's completion, every
    good row imported and every bad one rejected; and the upload's own MB/s (its POST, from
    the first byte sent to the answer)."""
    started = time.perf_counter()
    job = stack.upload(data.path, dataset)
    upload_rate = data.path.stat().st_size / 1e6 / (time.perf_counter() - started)
    job = stack.wait_for(job["task_id"], {"completed", "failed"})
    progress = job["progress"]
    assert job["status"] == "completed", job
    assert (progress["rows_done"], progress["rows_rejected"]) == (data.rows - data.bad, data.bad)
    return data.rows / seconds_between(job, "created_at", "finished_at"), upload_rate


def file_copy_rate(path: Path, directory: Path) -> float:
    """MB/s of copying the file into `directory`, kept: the least an upload that lands on
    this machine's disk can do, for the upload's rate to be read against."""
    started = time.perf_counter()
    shutil.copyfile(path, directory / f"copy-{uuid.uuid4().hex[:8]}.csv")
    return path.stat().st_size / 1e6 / (time.perf_counter() - started)


def measure_pause_latency(stack: Stack, path: Path, dataset: str, pauses: int) -> list[float]:
    """Seconds from the pause call to the job reported `paused`, over many pauses (of as
    many imports as it takes)."""
    latencies: list[float] = []
    while len(latencies) < pauses:
        task_id = stack.upload(path, dataset)["task_id"]
        stack.wait_for(task_id, {"running"}, every=0.01)
        while len(latencies) < pauses:
            time.sleep(0.15)  # let it run a batch or two
            started = time.perf_counter()
            if not stack.control(task_id, "pause"):
                break  # it completed first
            if stack.wait_for(task_id, {"paused", "completed"}, every=0.002)["status"] != "paused":
                break
            latencies.append(time.perf_counter() - started)
            stack.control(task_id, "resume")
            stack.wait_for(task_id, {"running", "completed"}, every=0.01)
        stack.control(task_id, "terminate")
    return latencies


def measure_rollback(stack: Stack, path: Path, dataset: str, rows: int) -> tuple[float, int]:
    """Seconds from terminate to `terminated` for an import past half its rows. Progress
    moves a batch (0.4 s) at a time, so an import may complete first: then another."""
    for attempt in range(5):
        task_id = stack.upload(path, f"{dataset}{attempt}")["task_id"]
        while (job := stack.job(task_id))["progress"]["rows_done"] < rows * 0.5:
            time.sleep(0.01)
        started = time.perf_counter()
        if stack.control(task_id, "terminate"):
            stack.wait_for(task_id, {"terminated"}, every=0.002)
            return time.perf_counter() - started, job["progress"]["rows_done"]
    raise RuntimeError("every import completed before it could be terminated")


def measure_reads_under_load(stack: Stack, path: Path, requests: int) -> list[float]:
    """Seconds per `GET /api/tasks/{id}/` while two imports run: a read that finds its
    import ended is not counted, and two more imports start for the reads still to do."""
    latencies: list[float] = []
    while len(latencies) < requests:
        task_ids = [stack.upload(path, f"load{n}")["task_id"] for n in range(2)]
        for task_id in task_ids:
            stack.wait_for(task_id, {"running"}, every=0.01)
        for number in itertools.count():
            started = time.perf_counter()
            running = stack.job(task_ids[number % 2])["status"] == "running"
            if not running or len(latencies) == requests:
                break
            latencies.append(time.perf_counter() - started)
            time.sleep(0.005)
        for task_id in task_ids:
            stack.control(task_id, "terminate")
            stack.wait_for(task_id, {"terminated", "completed"})
    return latencies


def measure_export(stack: Stack, dataset: str, rows: int, raw: bool) -> float:
    """Rows/s of an export of a whole dataset, from its start (job created) to completion."""
    body = json.dumps({"dataset": dataset, "from": "1900-01-01", "to": "2999-12-31", "raw": raw})
    job = stack.request(
        "POST", "/api/exports/", body.encode(), {"Content-Type": "application/json"}
    )
    job = stack.wait_for(job["task_id"], {"completed", "failed"})
    assert job["status"] == "completed" and job["progress"]["rows_done"] == rows, job
    return rows / seconds_between(job, "created_at", "finished_at")


def measure_export_start(stack: Stack, dataset: str, data: Path, imports: int) -> list[float]:
    """Seconds `POST /api/exports/` takes to answer, on `dataset` after `imports` more small
    imports into it (the plan reads the catalog, not the segments)."""
    small = data.parent / "small-import.csv"
    with data.open("rb") as source, small.open("wb") as out:
        out.writelines(line for _, line in zip(range(101), source, strict=False))
    for _ in range(imports):
        job = stack.upload(small, dataset)
        assert stack.wait_for(job["task_id"], {"completed", "failed"})["status"] == "completed"
    body = json.dumps({"dataset": dataset, "from": "1900-01-01", "to": "2999-12-31"}).encode()
    seconds = []
    for _ in range(30):
        started = time.perf_counter()
        job = stack.request("POST", "/api/exports/", body, {"Content-Type": "application/json"})
        seconds.append(time.perf_counter() - started)
        stack.request("POST", f"/api/tasks/{job['task_id']}/terminate/")
        stack.wait_for(job["task_id"], {"terminated"})  # no export runs during the next start
    return seconds


def psql_copy_out_rate(database_url: str, rows: int) -> float:
    """psql \\copy (SELECT …) TO of the rows the import baseline loaded."""
    started = time.perf_counter()
    command = "\\copy (SELECT * FROM plain) TO '/dev/null' WITH (FORMAT csv)"
    subprocess.run(["psql", database_url, "-q", "-c", command], check=True)
    return rows / (time.perf_counter() - started)


def psql_copy_rate(database_url: str, path: Path, rows: int, width: int) -> float:
    columns = ", ".join(f"c{n} text" for n in range(1, width + 1))
    psql = ["psql", database_url, "-q", "-v", "ON_ERROR_STOP=1"]
    # The rows loaded before stay, as Collect's imports do: a table dropped before the next
    # checkpoint is never written to disk, and a baseline that never pays for that measured
    # up to 1.3 times Collect's rate after a few imports (the extension of Collect's table
    # waited 5 % of its time on the first import, 32 % on the fifth; dropped: 4-6 %).
    kept = f"plain_{uuid.uuid4().hex[:8]}"
    subprocess.run(
        [
            *psql,
            "-c",
            f"ALTER TABLE IF EXISTS plain RENAME TO {kept}; CREATE TABLE plain ({columns})",
        ]
    )
    started = time.perf_counter()
    subprocess.run(
        [*psql, "-c", f"\\copy plain FROM '{path}' WITH (FORMAT csv, HEADER true)"], check=True
    )
    return rows / (time.perf_counter() - started)


def sqlite_baseline_rate(path: Path, rows: int, directory: Path) -> float:
    """A bare csv.reader + executemany loop into a text-column table, 10k rows a commit, in
    a database of its own, kept (see psql_copy_rate)."""
    database = directory / f"baseline-{uuid.uuid4().hex[:8]}.sqlite3"
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    started = time.perf_counter()
    with open(path, newline="", encoding="utf-8") as stream:
        reader = csv.reader(stream)
        width = len(next(reader))
        connection.execute(f"CREATE TABLE plain ({', '.join(f'c{n} text' for n in range(width))})")
        insert = f"INSERT INTO plain VALUES ({', '.join('?' * width)})"
        while batch := [row for _, row in zip(range(10_000), reader, strict=False)]:
            connection.execute("BEGIN")
            connection.executemany(insert, batch)
            connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    connection.close()
    return rows / elapsed


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# The run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pauses", type=int, default=20)
    parser.add_argument("--reads", type=int, default=300, help="status reads under load")
    parser.add_argument("--only", choices=["postgres", "sqlite"], help="one deployment only")
    parser.add_argument(
        "--data",
        choices=["realistic", "tidy", "both", "shapes"],
        default="both",
        help="shapes: five other shapes of form responses (bench/shapes.py)",
    )
    memory.add_arguments(parser)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    results: list[tuple[str, str, str]] = []

    def report(what: str, value: str, note: str = "") -> None:
        results.append((what, value, note))
        print(f"{what:<55} {value:>16}  {note}", flush=True)

    with tempfile.TemporaryDirectory(prefix="collect-bench-") as scratch:
        scratch_dir = Path(scratch)
        if not args.memory_only:
            names = {"both": ["realistic", "tidy"], "shapes": list(shapes.SHAPES)}.get(
                args.data, [args.data]
            )
            data = [data_set(name, args.rows) for name in names]
            if args.only != "sqlite":
                bench_postgres(args, data, scratch_dir, report)
            if args.only != "postgres":
                bench_sqlite(args, data, scratch_dir, report)
        if args.memory or args.memory_only:
            stacks = {}
            if args.only != "sqlite":
                stacks["PostgreSQL"] = lambda: postgres_stack(scratch_dir)
            if args.only != "postgres":
                stacks["SQLite"] = lambda: sqlite_stack(scratch_dir)
            memory.bench_memory(args, scratch_dir, stacks, generate, report)
    write_results(args, results)


def generate(rows: int, path: Path, *options: str) -> None:
    print(f"generating {rows:,} rows {' '.join(options)} …", flush=True)
    command = [str(BIN / "collect"), "generate", str(rows), "-o", str(path), *options]
    subprocess.run(command, check=True)


BAD_EVERY = 100_000  # of the realistic rows: an unreadable date


def data_set(name: str, rows: int) -> DataSet:
    path = OUT / f"{name}-{rows}.csv"
    if name in shapes.SHAPES:
        if not path.exists():
            print(f"writing {rows:,} rows of shape {name} …", flush=True)
            shapes.write_shape(name, rows, path)
        width = len(shapes.SHAPES[name][0])
        return DataSet(name, path, rows, 0, width)
    options = ["--realistic", "--bad-every", str(BAD_EVERY)] if name == "realistic" else []
    if not path.exists():
        generate(rows, path, *options)
    with path.open(newline="", encoding="utf-8") as stream:
        width = len(next(csv.reader(stream)))
    return DataSet(name, path, rows, rows // BAD_EVERY if options else 0, width)


@contextlib.contextmanager
def postgres_stack(scratch: Path, workers: int = 2) -> Iterator[Stack]:
    """The distributed deployment on a fresh database and queue, all removed afterwards."""
    import psycopg

    name = f"collect_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    data_dir = scratch / name
    data_dir.mkdir()
    env = {
        **os.environ,
        "COLLECT_DATA_DIR": str(data_dir),
        "DATABASE_URL": f"{POSTGRES_URL}/{name}",
        "CELERY_BROKER_URL": REDIS_URL,
        "COLLECT_QUEUE": f"collect-bench-{name}",
    }
    try:
        stack = Stack(env, workers=workers)
        try:
            yield stack
        finally:
            stack.stop()
    finally:
        with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        shutil.rmtree(data_dir, ignore_errors=True)


@contextlib.contextmanager
def sqlite_stack(scratch: Path) -> Iterator[Stack]:
    """The embedded deployment in a fresh data directory, removed afterwards."""
    data_dir = Path(tempfile.mkdtemp(prefix="sqlite-", dir=scratch))
    env = {**os.environ, "COLLECT_DATA_DIR": str(data_dir)}
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "COLLECT_QUEUE"):
        env.pop(name, None)
    try:
        stack = Stack(env)
        try:
            yield stack
        finally:
            stack.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def bench_postgres(args, data: list[DataSet], scratch: Path, report) -> None:
    for number, one in enumerate(data):
        with postgres_stack(scratch) as stack:
            database_url = stack.env["DATABASE_URL"]
            baseline = (
                "psql \\copy FROM file",
                partial(psql_copy_rate, database_url, one.path, one.rows, one.width),
            )
            label = f"PostgreSQL, {one.name}"
            bench_imports(label, stack, baseline, 0.8, args, one, report)
            copy_out = partial(psql_copy_out_rate, database_url, one.rows)
            bench_exports(label, stack, copy_out, args, one, report)
            if number == 0:
                bench_control(label, stack, args, one, report)


def bench_sqlite(args, data: list[DataSet], scratch: Path, report) -> None:
    for number, one in enumerate(data):
        with sqlite_stack(scratch) as stack:
            baseline = (
                "csv.reader + executemany",
                partial(sqlite_baseline_rate, one.path, one.rows, scratch),
            )
            label = f"SQLite, {one.name}"
            bench_imports(label, stack, baseline, 0.8, args, one, report)
            bench_exports(label, stack, None, args, one, report)
            if number == 0:
                bench_control(label, stack, args, one, report)


def bench_imports(label: str, stack: Stack, baseline, target: float, args, data, report) -> None:
    """Collect's import rate on one running deployment against `baseline`'s, and the rate
    of its uploads against a plain copy of the file."""
    baseline_name, baseline_rate = baseline
    base_rates, collect_rates, upload_rates, copy_rates = [], [], [], []
    for run in range(args.repeat):  # interleaved, so both see the same machine
        base_rates.append(baseline_rate())
        rate, upload_rate = measure_import(stack, data, f"import{run}")
        collect_rates.append(rate)
        upload_rates.append(upload_rate)
        copy_rates.append(file_copy_rate(data.path, stack.logs))
    base, ours = statistics.median(base_rates), statistics.median(collect_rates)
    report(f"{label}: {baseline_name} (rows/s)", f"{base:,.0f}", "baseline")
    report(
        f"{label}: Collect import, upload done → completed",
        f"{ours:,.0f}",
        f"ratio {ours / base:.2f} (target ≥ {target}); "
        f"{ours / ORIGINAL_RATE:.0f} times the original's rate",
    )
    upload, copy = statistics.median(upload_rates), statistics.median(copy_rates)
    report(
        f"{label}: upload, multipart POST → 202 (MB/s)",
        f"{upload:,.0f}",
        f"a copy of the file on this disk: {copy:,.0f} MB/s",
    )


CONTROL_ROWS = 2_000_000  # pauses, rollback and reads under load need imports that last


def control_file(data: DataSet) -> tuple[Path, int]:
    """The data set's rows, repeated to at least CONTROL_ROWS (made once, in bench/out/), and
    how many rows that is: on a fast machine a smaller import ends before it is measured."""
    times = -(-CONTROL_ROWS // data.rows)
    if times == 1:
        return data.path, data.rows
    path = OUT / f"{data.path.stem}-x{times}.csv"
    if not path.exists():
        with data.path.open("rb") as source, path.open("wb") as out:
            out.write(source.readline())  # the header: the data sets' names are one line
            body = source.tell()
            for _ in range(times):
                source.seek(body)
                shutil.copyfileobj(source, out)
    return path, data.rows * times


def bench_control(label: str, stack: Stack, args, data: DataSet, report) -> None:
    """Pause latency, rollback time, status reads under load and peak memory."""
    data, rows = control_file(data)
    latencies = measure_pause_latency(stack, data, "pause", args.pauses)
    report(
        f"{label}: pause latency p50 / p99 (ms)",
        f"{percentile(latencies, 0.5) * 1000:.0f} / {percentile(latencies, 0.99) * 1000:.0f}",
        f"{len(latencies)} pauses (target p99 < 250)",
    )
    seconds, rows = measure_rollback(stack, data, "rollback", rows)
    report(
        f"{label}: terminate → terminated (s)",
        f"{seconds:.2f}",
        f"{rows:,} rows written (target < 3 s)",
    )
    reads = measure_reads_under_load(stack, data, requests=args.reads)
    report(
        f"{label}: GET /api/tasks/{{id}}/ p50 / p99 during 2 imports (ms)",
        f"{percentile(reads, 0.5) * 1000:.1f} / {percentile(reads, 0.99) * 1000:.1f}",
        f"{len(reads)} requests (target p99 < 50)",
    )
    rss = stack.peak_rss_mb()
    workers = f" / {rss['workers']:.0f}" if stack.workers else ""
    report(
        f"{label}: peak RSS web{' / worker' if stack.workers else ''} (MB)",
        f"{rss['web']:.0f}{workers}",
    )


def bench_exports(label: str, stack: Stack, baseline, args, data: DataSet, report) -> None:
    """Exports of the first benchmark import's dataset (all its rows), raw and neutralised."""
    raw_rates, safe_rates, base_rates = [], [], []
    for _ in range(args.repeat):
        if baseline is not None:
            base_rates.append(baseline())
        raw_rates.append(measure_export(stack, "import0", data.rows - data.bad, raw=True))
        safe_rates.append(measure_export(stack, "import0", data.rows - data.bad, raw=False))
    base = statistics.median(base_rates) if base_rates else None
    if base:
        report(f"{label}: psql \\copy (SELECT …) TO (rows/s)", f"{base:,.0f}", "baseline")
    for name, rates in (("raw", raw_rates), ("formulas neutralised", safe_rates)):
        rate = statistics.median(rates)
        target = " (target ≥ 0.8)" if name == "formulas neutralised" else ""
        note = f"ratio {rate / base:.2f}{target}" if base else ""
        report(f"{label}: Collect export, {name} (rows/s)", f"{rate:,.0f}", note)
    starts = measure_export_start(stack, "import0", data.path, imports=30)
    report(
        f"{label}: POST /api/exports/ p50 / p99 (ms)",
        f"{percentile(starts, 0.5) * 1000:.1f} / {percentile(starts, 0.99) * 1000:.1f}",
        f"{args.rows:,} rows in 1 import + 30 small ones (target < 100)",
    )


def write_results(args, results) -> None:
    machine = f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}"
    runs = (
        []
        if args.memory_only
        else [f"Rows: {args.rows:,}, medians of {args.repeat} interleaved runs"]
    )
    if args.memory or args.memory_only:
        runs.append(memory.describe(args))
    lines = [
        f"{'; '.join(runs)}; {machine}; {time.strftime('%Y-%m-%d %H:%M')}",
        "",
        "| measurement | value | note |",
        "|---|---:|---|",
        *(f"| {what} | {value} | {note} |" for what, value, note in results),
    ]
    (OUT / "results.md").write_text("\n".join(lines) + "\n")
    print(f"\nwritten to {OUT / 'results.md'}")


if __name__ == "__main__":
    main()
