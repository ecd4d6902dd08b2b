"""Run Collect or its tests from a fresh clone, with nothing but Python 3.11+.

    python3 bootstrap.py serve [--host H] [--port P]   # the embedded product
    python3 bootstrap.py test                          # ruff + the whole test suite
    python3 bootstrap.py ARGS...                       # any other `collect` command

It creates `.venv` on first use, installs the pinned dependencies into it (again only
when pyproject.toml or the constraints change) and then runs the command inside it.
Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"
STAMP = VENV / ".collect-installed"


def venv_bin(name: str) -> Path:
    scripts = "Scripts" if os.name == "nt" else "bin"
    suffix = ".exe" if os.name == "nt" else ""
    return VENV / scripts / f"{name}{suffix}"


def install_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in (ROOT / "pyproject.toml", CONSTRAINTS):
        digest.update(path.read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def ensure_installed() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"Collect needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    if not venv_bin("python").exists():
        print("bootstrap: creating .venv", file=sys.stderr)
        venv.create(VENV, with_pip=True)
    fingerprint = install_fingerprint()
    if STAMP.exists() and STAMP.read_text() == fingerprint:
        return
    print("bootstrap: installing dependencies into .venv", file=sys.stderr)
    pip = [str(venv_bin("python")), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "-c", str(CONSTRAINTS), "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(fingerprint)


def main(argv: list[str]) -> int:
    ensure_installed()
    if argv[:1] == ["test"]:
        command = [str(venv_bin("python")), str(ROOT / "tests" / "run.py"), *argv[1:]]
    else:
        command = [str(venv_bin("collect")), *argv]
    if os.name == "posix":
        os.execv(command[0], command)  # signals (Ctrl-C, SIGTERM) reach the command itself
    return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
