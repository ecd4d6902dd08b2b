"""The command-line client (`collect upload`, `tasks`, `pause`, `resume`, `terminate`,
`wait`, `download`, `export`) run as a user runs it, against a real server: Ctrl-C and a cut
connection mid-upload, Ctrl-C while a job runs, the same file again, short task ids, exit
codes and one-line errors."""

import csv
import gzip
import json
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    COLLECT,
    GeneratedCsv,
    assert_imported_exactly_once,
    free_port,
    wait_until,
)

USER = "carol"
CHUNK_MIB = "1"
CLI_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def carol(server):
    return server.client(USER)


@pytest.fixture
def cli_env(server, carol, tmp_path) -> dict[str, str]:
    """The environment of a user's shell: where the server is, the token, and a state
    directory of this test's own (where uploads in progress are remembered)."""
    return {
        **os.environ,
        "COLLECT_URL": f"http://127.0.0.1:{server.port}",
        "COLLECT_TOKEN": server.tokens[USER],
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "COLUMNS": "200",
    }


def collect(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(COLLECT), *args], env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S
    )


def remembered_uploads(env: dict[str, str]) -> dict[str, str]:
    path = Path(env["XDG_STATE_HOME"]) / "collect" / "uploads.json"
    return json.loads(path.read_text()) if path.exists() else {}


def upload_offset(carol, upload_url: str) -> int:
    path = upload_url.split("://", 1)[1].split("/", 1)[1]
    reply = carol.request("HEAD", f"/{path}", headers={"Tus-Resumable": "1.0.0"})
    return int(reply.headers["Upload-Offset"])


def as_from_a_terminal() -> None:
    """Ctrl-C as a terminal sends it: a shell that runs the suite in the background has
    made SIGINT ignored, and the CLI under test would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_upload_wait_imports_the_file_and_prints_the_task(server, carol, cli_env, tmp_path):
    source = tmp_path / "small.csv.gz"
    rows = [["id", "submitted_at", "answer"]] + [[str(n), "2025-03-01", "yes"] for n in range(500)]
    source.write_bytes(gzip.compress("".join(",".join(r) + "\n" for r in rows).encode()))
    result = collect(cli_env, "upload", str(source), "--dataset", "cli-small", "--wait")
    assert result.returncode == 0, result.stderr
    task_id = result.stdout.strip()
    job = carol.job(task_id)
    assert (job["status"], job["dataset"], job["filename"]) == (
        "completed",
        "cli-small",
        source.name,
    )
    assert_imported_exactly_once(server, job, 500)
    assert "import completed: 500 rows" in result.stderr
    assert remembered_uploads(cli_env) == {}  # done: nothing left to resume


def test_an_upload_stopped_by_ctrl_c_resumes_where_it_stopped(
    server, carol, cli_env, big_csv: GeneratedCsv
):
    command = [str(COLLECT), "upload", str(big_csv.path), "--dataset", "cli-resume"]
    first = subprocess.Popen(
        [*command, "--chunk-mib", CHUNK_MIB],
        env=cli_env,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=as_from_a_terminal,
    )
    url = wait_until(
        lambda: next(iter(remembered_uploads(cli_env).values()), None),
        timeout=30,
        what="the upload to be created",
    )
    wait_until(lambda: upload_offset(carol, url) > 20 * 2**20, timeout=60, what="20 MiB sent")
    first.send_signal(signal.SIGINT)
    _, errors = first.communicate(timeout=30)
    assert first.returncode == 130, errors
    assert "the same command again resumes" in errors
    stopped_at = upload_offset(carol, url)
    assert 0 < stopped_at < big_csv.path.stat().st_size

    again = collect(cli_env, *command[1:], "--wait")
    assert again.returncode == 0, again.stderr
    assert f"resuming the upload at {stopped_at:,}" in again.stderr
    job = carol.job(again.stdout.strip())
    assert job["upload_id"] == url.rstrip("/").rsplit("/", 1)[1]  # the same upload, continued
    assert_imported_exactly_once(server, job, big_csv.rows)


class CuttingProxy:
    """A TCP proxy to the server that cuts the connection once, in the middle of the
    upload, after `cut_after` bytes from the client: a network that fails."""

    def __init__(self, target_port: int, cut_after: int) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.sent = 0
        self.cuts = 0
        self.listener = socket.create_server(("127.0.0.1", free_port()))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, upward: bool) -> None:
        try:
            while data := source.recv(1 << 16):
                if upward:
                    self.sent += len(data)
                    if self.cuts == 0 and self.sent > self.cut_after:
                        self.cuts += 1
                        break
                target.sendall(data)
        except OSError:
            pass
        for end in (source, target):
            end.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def cutting_proxy(server) -> Iterator[CuttingProxy]:
    proxy = CuttingProxy(server.port, cut_after=30 * 2**20)
    yield proxy
    proxy.close()


def test_a_cut_connection_is_resumed_by_the_same_command(
    server, carol, cli_env, big_csv: GeneratedCsv, cutting_proxy
):
    result = collect(
        cli_env,
        "upload",
        str(big_csv.path),
        "--dataset",
        "cli-cut",
        "--wait",
        "--url",
        f"http://127.0.0.1:{cutting_proxy.port}",
    )
    assert cutting_proxy.cuts == 1
    assert result.returncode == 0, result.stderr
    assert "the connection broke" in result.stderr
    assert_imported_exactly_once(server, carol.job(result.stdout.strip()), big_csv.rows)


def test_control_commands_and_their_refusals(server, carol, cli_env, big_csv: GeneratedCsv):
    task_id = carol.start_import(big_csv.path, dataset="cli-control")["task_id"]
    paused = collect(cli_env, "pause", task_id)
    assert paused.returncode == 0, paused.stderr
    assert f"import {task_id} is paus" in paused.stderr  # pausing or paused
    carol.wait_for_status(task_id, "paused")
    listed = collect(cli_env, "tasks", "--status", "paused")
    assert listed.returncode == 0
    lines = [line.split("\t") for line in listed.stdout.splitlines()]
    assert lines[0][:4] == ["task_id", "kind", "dataset", "status"]
    assert [task_id, "import", "cli-control", "paused"] in [line[:4] for line in lines[1:]]
    assert collect(cli_env, "resume", task_id).returncode == 0
    terminated = collect(cli_env, "terminate", task_id)
    assert terminated.returncode == 0, terminated.stderr
    carol.wait_for_status(task_id, "terminated")
    refused = collect(cli_env, "resume", task_id)
    assert refused.returncode == 1
    assert refused.stderr.strip() == "collect: cannot resume a job that is terminated"
    missing = collect(cli_env, "pause", "no-such-task")
    assert (missing.returncode, missing.stderr.strip()) == (
        2,
        "collect: 'no-such-task' is not a task id (hex digits and -)",
    )


def test_export_waits_and_downloads_the_file(server, carol, cli_env, tmp_path):
    rows = [["id", "submitted_at", "note"]] + [
        [str(n), f"2025-04-{1 + n % 30:02d}", f"line\nbreak {n}"] for n in range(300)
    ]
    source = tmp_path / "dated.csv"
    with source.open("w", newline="") as file:
        csv.writer(file).writerows(rows)
    assert (
        collect(cli_env, "upload", str(source), "--dataset", "cli-export", "--wait").returncode == 0
    )
    output = tmp_path / "april.csv"
    result = collect(
        cli_env,
        "export",
        "--from",
        "2025-04-01",
        "--to",
        "2025-04-10",
        "--dataset",
        "cli-export",
        "-o",
        str(output),
    )
    assert result.returncode == 0, result.stderr
    with output.open(newline="") as file:
        exported = list(csv.reader(file))
    expected = [r for r in rows[1:] if r[1] <= "2025-04-10"]
    assert exported[0] == rows[0]
    assert sorted(exported[1:], key=lambda r: int(r[0])) == expected
    assert not output.with_name("april.csv.part").exists()


def test_errors_are_one_line_with_a_non_zero_exit(server, cli_env, tmp_path):
    no_token = {key: value for key, value in cli_env.items() if key != "COLLECT_TOKEN"}
    result = collect(no_token, "tasks")
    assert result.returncode == 2
    assert result.stderr.startswith("collect: no API token")
    wrong = collect({**cli_env, "COLLECT_TOKEN": "not-a-token"}, "tasks")
    assert (wrong.returncode, wrong.stderr.strip()) == (
        1,
        "collect: the server refused the token: check COLLECT_TOKEN",
    )
    away = collect({**cli_env, "COLLECT_URL": f"http://127.0.0.1:{free_port()}"}, "tasks")
    assert away.returncode == 1
    assert away.stderr.strip().startswith("collect: cannot reach Collect at")
    missing = collect(cli_env, "upload", str(tmp_path / "nothing.csv"))
    assert (missing.returncode, missing.stderr.strip()) == (
        1,
        f"collect: no such file: {tmp_path / 'nothing.csv'}",
    )
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"a,a\n1,2\n")
    refused = collect(cli_env, "upload", str(bad))
    assert refused.returncode == 1
    assert refused.stderr.strip().endswith("collect: the header names column 'a' twice")


def test_tasks_prints_job_fields_as_text_never_as_markup(carol, cli_env, tmp_path):
    """A dataset named like rich markup is shown as written: it neither breaks the table
    nor turns into a link."""
    for dataset in ("[/bold]", "[link=https://evil.example]bank[/link]"):
        job = carol.start_import(b"id\r\n1\r\n", dataset=dataset)
        carol.wait_for_status(job["task_id"], "completed")
    # In a terminal (script gives the command one), tasks draws its table with rich.
    command = f"{COLLECT} tasks"
    result = subprocess.run(
        ["script", "-qec", command, "/dev/null"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[/bold]" in result.stdout
    assert "[link=https://evil.example]bank[/link]" in result.stdout
    assert "\x1b]8;" not in result.stdout  # no terminal hyperlink was made


def small_csv(tmp_path: Path, name: str, rows: int = 500) -> Path:
    source = tmp_path / name
    lines = ["id,submitted_at,answer"] + [f"{n},2025-03-01,yes" for n in range(rows)]
    source.write_text("\n".join(lines) + "\n")
    return source


def test_the_same_file_again_attaches_to_its_import_unless_forced(carol, cli_env, tmp_path):
    source = small_csv(tmp_path, "twice.csv")
    first = collect(cli_env, "upload", str(source), "--dataset", "cli-twice")
    assert first.returncode == 0, first.stderr
    task_id = first.stdout.strip()

    again = collect(cli_env, "upload", str(source), "--dataset", "cli-twice", "--wait")

    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == task_id  # the same job, not a second import
    assert f"into dataset 'cli-twice' already, by task {task_id}" in again.stderr
    assert (
        f"import completed: 500 rows imported of 500 read, 0 rejected, "
        f"{source.stat().st_size:,} bytes in"
    ) in again.stderr
    dataset = carol.get("/api/datasets/cli-twice/").json()
    assert (dataset["imports"], dataset["rows"]) == (1, 500)
    assert remembered_uploads(cli_env) == {}

    forced = collect(cli_env, "upload", str(source), "--dataset", "cli-twice", "--wait", "--force")
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.strip() != task_id
    dataset = carol.get("/api/datasets/cli-twice/").json()
    assert (dataset["imports"], dataset["rows"]) == (2, 1000)


def test_ctrl_c_while_the_import_runs_leaves_it_running_and_wait_picks_it_up(
    server, carol, cli_env, big_csv: GeneratedCsv
):
    command = [str(COLLECT), "upload", str(big_csv.path), "--dataset", "cli-ctrl-c", "--wait"]
    first = subprocess.Popen(
        command,
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=as_from_a_terminal,
    )
    assert first.stdout is not None
    task_id = first.stdout.readline().strip()  # printed once the upload is done
    carol.wait_until_writing(task_id)
    first.send_signal(signal.SIGINT)
    _, errors = first.communicate(timeout=30)

    assert first.returncode == 130, errors
    assert errors.strip().splitlines()[-1] == (
        f"collect: interrupted: import {task_id} goes on on the server (running); "
        f"`collect wait {task_id[:8]}` follows it again, `collect pause {task_id[:8]}` pauses it"
    )
    assert carol.job(task_id)["status"] in ("running", "completed")

    followed = collect(cli_env, "wait", task_id[:8])
    assert followed.returncode == 0, followed.stderr
    assert f"import completed: {big_csv.rows:,} rows imported" in followed.stderr
    assert_imported_exactly_once(server, carol.job(task_id), big_csv.rows)


def test_wait_and_download_take_a_short_id_and_refuse_a_wrong_one(carol, cli_env, tmp_path):
    source = small_csv(tmp_path, "short.csv", rows=20)
    assert (
        collect(cli_env, "upload", str(source), "--dataset", "cli-short", "--wait").returncode == 0
    )
    export_id = start_export(carol, "cli-short")

    fetched = collect(cli_env, "download", export_id[:6], "-o", str(tmp_path / "out.csv"))
    assert fetched.returncode == 0, fetched.stderr
    assert read_csv(tmp_path / "out.csv") == read_csv(source)
    assert "20 rows written to" in fetched.stderr
    by_default = subprocess.run(
        [str(COLLECT), "download", export_id],
        env=cli_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )
    assert by_default.returncode == 0, by_default.stderr
    assert (tmp_path / f"cli-short-{export_id}.csv").read_text() == (
        tmp_path / "out.csv"
    ).read_text()
    not_an_export = collect(
        cli_env, "download", carol.get("/api/tasks/?kind=import").json()["results"][0]["task_id"]
    )
    assert not_an_export.returncode == 1
    assert "is an import: only an export has a file to download" in not_an_export.stderr

    unknown = collect(cli_env, "wait", "ffffffff-ffff-0")  # no id of version 4 has this
    assert (unknown.returncode, unknown.stderr.strip()) == (1, "collect: no task ffffffff-ffff-0")
    first_chars = {}
    while True:  # tasks until two share a first digit: 17 at most
        page = carol.get("/api/tasks/").json()["results"]
        for job in page:
            first_chars.setdefault(job["task_id"][0], set()).add(job["task_id"])
        shared = [c for c, ids in first_chars.items() if len(ids) > 1]
        if shared:
            break
        start_export(carol, "cli-short")
    ambiguous = collect(cli_env, "pause", shared[0])
    assert ambiguous.returncode == 2
    assert f"tasks start with {shared[0]}: " in ambiguous.stderr
    assert ambiguous.stderr.strip().endswith("; type more of the id")


def start_export(carol, dataset: str) -> str:
    body = json.dumps({"dataset": dataset, "from": "2025-03-01", "to": "2025-03-01"})
    headers = {"Content-Type": "application/json"}
    reply = carol.request("POST", "/api/exports/", body=body, headers=headers)
    assert reply.status == 202, reply.body
    return reply.json()["task_id"]


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="") as file:
        return list(csv.reader(file))


@pytest.mark.parametrize(
    "setting",
    ["COLLECT_PAUSE_TIMEOUT=5s", "COLLECT_MAX_UPLOAD_BYTES=", "DATABASE_URL=nonsense://x"],
)
def test_a_setting_that_cannot_be_read_is_named_in_one_line(setting, tmp_path):
    name, _, value = setting.partition("=")
    env = {**os.environ, "COLLECT_DATA_DIR": str(tmp_path), name: value}
    done = subprocess.run(
        [COLLECT, "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"collect: {name}")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
