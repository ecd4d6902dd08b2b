"""The whole test suite, as CI runs it: lint, then every test twice — on the embedded stack
(SQLite, in-process workers) and on the distributed one (PostgreSQL, Redis, real
`collect worker` processes, which the end-to-end fixtures start and stop).

Run through `python3 bootstrap.py test`; extra arguments go to pytest. The distributed run
needs PostgreSQL and Redis (COLLECT_TEST_POSTGRES_URL, default the local server as user
postgres; COLLECT_TEST_REDIS_URL, default the local Redis). Without them it is left out with
a notice, except in CI (CI=true), where that is a failure.

The browser test drives Debian's Chromium: where it is missing and apt-get can install it
(as root), this installs it first. Playwright downloads no browser of its own.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
POSTGRES_URL = os.environ.get("COLLECT_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("COLLECT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def run(title: str, command: list[str], env: dict[str, str] | None = None) -> None:
    print(f"\n=== {title}: {' '.join(command)}", flush=True)
    result = subprocess.run(command, cwd=ROOT, env=env)
    if result.returncode != 0:
        print(f"=== {title} failed (exit {result.returncode})", flush=True)
        sys.exit(result.returncode or 1)


def base_env(data_dir: str) -> dict[str, str]:
    env = {**os.environ, "COLLECT_DATA_DIR": data_dir, "COLLECT_FAIL_ON_SKIP": "1"}
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "COLLECT_DISPATCH", "COLLECT_QUEUE"):
        env.pop(name, None)
    return env


def distributed_stack_missing() -> str | None:
    import psycopg
    import redis

    try:
        psycopg.connect(f"{POSTGRES_URL}/postgres", connect_timeout=5).close()
    except psycopg.Error as error:
        return f"PostgreSQL at {POSTGRES_URL}: {error}"
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5).ping()
    except redis.RedisError as error:
        return f"Redis at {REDIS_URL}: {error}"
    return None


def ensure_chromium() -> None:
    if Path("/usr/bin/chromium").exists() or not shutil.which("apt-get") or os.geteuid() != 0:
        return  # present, or not ours to install: the browser test will say what is missing
    print("\n=== installing Debian's chromium for the browser test", flush=True)
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    quiet = {
        "stdout": subprocess.DEVNULL,
        "env": {**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    }
    if subprocess.run(install, **quiet).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], **quiet)
        subprocess.run(install, **quiet)


def main(pytest_args: list[str]) -> None:
    ensure_chromium()
    run("ruff check", [str(BIN / "ruff"), "check", "."])
    run("ruff format", [str(BIN / "ruff"), "format", "--check", "."])
    run("import contracts (pyproject.toml)", [str(BIN / "lint-imports")])
    run("type check (mypy)", [str(BIN / "mypy")])
    pytest = [sys.executable, "-m", "pytest", *pytest_args]
    with tempfile.TemporaryDirectory(prefix="collect-test-") as data_dir:
        run("tests on the embedded stack (SQLite)", pytest, base_env(data_dir))

    if missing := distributed_stack_missing():
        print(f"\n=== the distributed run needs {missing}", flush=True)
        if os.environ.get("CI"):
            sys.exit(1)
        print("=== left out: only the embedded run was done", flush=True)
        return
    run_id = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="collect-test-") as data_dir:
        env = base_env(data_dir)
        # pytest-django creates and drops test_<name>; the end-to-end stacks make their own.
        env["DATABASE_URL"] = f"{POSTGRES_URL}/collect_{run_id}"
        env["CELERY_BROKER_URL"] = REDIS_URL
        env["COLLECT_QUEUE"] = f"collect-test-{run_id}"
        run("tests on the distributed stack (PostgreSQL, Redis, Celery)", pytest, env)
    print("\n=== all test runs passed", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
