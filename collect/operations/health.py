"""Readiness: whether this process can do its work now, service by service.

Each check answers for one thing the process depends on (the database always; the broker
when jobs go to Celery workers; the bucket when files live in one), quickly: an orchestrator
probes every few seconds, and a check that hangs for as long as TCP does would answer
nothing useful.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from collect.files import storage_answers

CHECK_TIMEOUT_S = 2


@dataclass(frozen=True)
class Readiness:
    down: list[str]  # the names of what does not answer, in the order checked
    reasons: dict[str, str]  # name: the error it gave

    @property
    def ready(self) -> bool:
        return not self.down


def database_answers() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def broker_answers() -> None:
    from kombu import Connection

    # A connection of its own, not the app's pool: one that fails is thrown away here.
    with Connection(
        settings.CELERY_BROKER_URL,
        connect_timeout=CHECK_TIMEOUT_S,
        transport_options={"socket_timeout": CHECK_TIMEOUT_S},
    ) as broker:
        broker.ensure_connection(max_retries=1, interval_start=0, timeout=CHECK_TIMEOUT_S)


def readiness_checks() -> dict[str, Callable[[], None]]:
    """What this process needs, by name: the names are what a 503 lists as down."""
    checks: dict[str, Callable[[], None]] = {"database": database_answers}
    if settings.COLLECT_DISPATCH == "celery":
        checks["broker"] = broker_answers
    if settings.COLLECT_S3_BUCKET:  # the local directory is this process's own disk
        checks["storage"] = storage_answers
    return checks


def readiness() -> Readiness:
    down: list[str] = []
    reasons: dict[str, str] = {}
    for name, check in readiness_checks().items():
        try:
            check()
        except Exception as error:  # whatever it is, that service does not answer
            down.append(name)
            reasons[name] = f"{type(error).__name__}: {error}".strip()[:300]
            if name == "database":
                connection.close()  # a broken connection is not kept for the next request
    return Readiness(down=down, reasons=reasons)
