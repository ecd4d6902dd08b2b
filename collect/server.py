"""`collect serve`: the HTTP server, and in the embedded mode the worker pool beside it."""

import gc
import io
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command

if TYPE_CHECKING:  # imported where used, once Django is set up
    from collect.jobs.pool import WorkerPool

log = logging.getLogger("collect.server")
_held_locks: list[TextIO] = []  # open lock files, kept for the life of the process


def serve(host: str, port: int) -> None:
    from collect.httpd import create_server
    from collect.jobs.dispatch import dispatcher
    from collect.jobs.sweeper import SweeperThread
    from collect.wsgi import application

    call_command("check", stdout=io.StringIO())  # a setting that cannot work stops the start
    embedded = settings.COLLECT_DISPATCH == "inprocess"
    if embedded:
        _hold_data_dir_lock(settings.DATA_DIR / "serve.lock")
    call_command("migrate", interactive=False, verbosity=0)
    # Celery's and kombu's modules, imported now: the sweeper's first wake-up and a first
    # /readyz once imported them at the same time, and one found them half made (503).
    dispatcher().warm_up()
    try:  # bind before taking over any job: a taken port must not leave jobs half-started
        server = create_server(
            application,
            host=host,
            port=port,
            threads=8,
            max_body=settings.COLLECT_MAX_UPLOAD_BYTES + (1 << 20),
        )
    except OSError as error:
        sys.exit(f"cannot listen on {host}:{port}: {error.strerror}")
    # Everything loaded so far lives as long as the process: keep it out of the collector's
    # full passes, which the import's many short-lived row lists would otherwise trigger.
    gc.freeze()
    pool = _start_worker_pool() if embedded else None
    sweeper = SweeperThread()
    sweeper.start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log.info(
        "Collect on http://%s:%s/ (API docs at /docs/), data in %s, %s",
        host,
        port,
        settings.DATA_DIR,
        f"{settings.COLLECT_WORKERS} in-process workers" if embedded else "jobs run by workers",
    )
    if not get_user_model().objects.exists():
        log.info(
            "no accounts yet: `collect user NAME` makes one to sign in to the page, "
            "`collect token NAME` an API token"
        )
    server.print_listen("Serving on http://{}:{}")
    try:
        server.run()
    finally:
        sweeper.stop()
        if pool is not None:
            log.info("stopping: running jobs commit their batch and wait for the next start")
            pool.stop()


def _start_worker_pool() -> "WorkerPool":
    from collect.jobs.dispatch import InProcessDispatcher, dispatcher
    from collect.jobs.pool import WorkerPool
    from collect.jobs.sweeper import recover_all_after_restart

    # Embedded: COLLECT_DISPATCH is "inprocess", so the dispatcher is the in-process one.
    pool = WorkerPool(settings.COLLECT_WORKERS, cast(InProcessDispatcher, dispatcher()))
    recover_all_after_restart()
    pool.start()
    return pool


def _hold_data_dir_lock(path: Path) -> None:
    """One embedded server per data directory: it takes over every unfinished job at start,
    which is only right if no other server is running them."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; one server per data dir is on the user
        return
    handle = open(path, "a")  # noqa: SIM115 - held open, and so locked, until the process ends
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(f"another `collect serve` is using {settings.DATA_DIR}; stop it first")
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    _held_locks.append(handle)
