"""Servers of a test's own, for the tests that break them: a Redis and a PostgreSQL cluster on
free ports, in temporary directories, started and stopped (or killed) by the test.

The machine's shared PostgreSQL and Redis are never touched. PostgreSQL refuses to run as
root, so when the tests run as root its cluster belongs to an unprivileged user.
"""

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{what} did not listen on port {port}")


@dataclass
class OwnRedis:
    """A `redis-server` that keeps nothing on disk, as the broker of one stack."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "OwnRedis":
        binary = shutil.which("redis-server")
        assert binary, "these tests need redis-server on PATH (Debian's redis-server package)"
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        _wait_for_port(self.port, "redis-server")
        return self

    def freeze(self) -> None:
        """SIGSTOP: it accepts connections and answers nothing, as across a partition."""
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """kill -9: what it held in memory (queued and unacknowledged messages) is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.thaw()
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_major_version)
    binary = found[-1] if found else shutil.which(name)
    assert binary, f"these tests need PostgreSQL's {name} (Debian's postgresql package)"
    return binary


def _major_version(path: str) -> int:
    version = Path(path).parent.parent.name
    return int(version) if version.isdigit() else 0


@dataclass
class OwnPostgres:
    """A PostgreSQL cluster of the test's own, with trust authentication for `postgres`."""

    port: int = field(default_factory=free_port)
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="collect-pg-")))

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _as_owner(self, command: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return command
        return ["runuser", "-u", self._owner(), "--", *command]

    def _owner(self) -> str:
        for name in ("postgres", "nobody"):
            try:
                pwd.getpwnam(name)
                return name
            except KeyError:
                continue
        raise AssertionError("no unprivileged user to run PostgreSQL as")

    def _run(self, command: list[str]) -> None:
        result = subprocess.run(
            self._as_owner(command), capture_output=True, text=True, timeout=START_TIMEOUT_S
        )
        assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"

    def init(self) -> "OwnPostgres":
        if os.geteuid() == 0:
            shutil.chown(self.directory, user=self._owner())
        initdb = [_postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres"]
        self._run([*initdb, "--auth=trust", "--encoding=UTF8", "--no-sync", "--no-instructions"])
        return self.start()

    def start(self) -> "OwnPostgres":
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            "-c max_connections=100 -c fsync=off"
        )
        log = self.directory / "postgres.log"
        pg_ctl = [_postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(log)]
        self._run([*pg_ctl, "-o", options, "-w", "start"])
        return self

    def stop(self, mode: str = "fast") -> None:
        """`immediate` is a crash: no checkpoint, every session cut at once."""
        if (self.data / "postmaster.pid").exists():
            self._run([_postgres_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def log(self) -> str:
        path = self.directory / "postgres.log"
        return path.read_text(errors="replace")[-20_000:] if path.exists() else ""
