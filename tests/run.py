"""The whole test suite, as CI runs it: lint, then every test on the embedded stack (SQLite,
in-process workers). Run through `python3 bootstrap.py test`; extra arguments go to pytest."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(title: str, command: list[str], env: dict[str, str] | None = None) -> None:
    print(f"\n=== {title}: {' '.join(command)}", flush=True)
    result = subprocess.run(command, cwd=ROOT, env=env)
    if result.returncode != 0:
        print(f"=== {title} failed (exit {result.returncode})", flush=True)
        sys.exit(result.returncode or 1)


def main(pytest_args: list[str]) -> None:
    run("ruff check", [str(BIN / "ruff"), "check", "."])
    run("ruff format", [str(BIN / "ruff"), "format", "--check", "."])
    with tempfile.TemporaryDirectory(prefix="collect-test-") as data_dir:
        env = {**os.environ, "COLLECT_DATA_DIR": data_dir, "COLLECT_FAIL_ON_SKIP": "1"}
        env.pop("DATABASE_URL", None)
        env.pop("CELERY_BROKER_URL", None)
        run("tests on SQLite", [sys.executable, "-m", "pytest", *pytest_args], env)
    print("\n=== all test runs passed", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
