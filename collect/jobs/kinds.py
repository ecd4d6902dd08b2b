"""What each kind of job does, behind one small interface the runner drives.

A kind opens a *run* for a claimed job; the runner calls `step` inside a transaction, once
per batch, and commits the batch together with the checkpoint the step returns.
"""

from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

from django.utils.module_loading import import_string

from collect.jobs.models import Job
from collect.jobs.states import Kind


@dataclass
class Progress:
    """Where a job stands after a batch; `checkpoint` is all a later run needs to continue."""

    checkpoint: dict[str, Any]
    rows_done: int
    rows_rejected: int
    bytes_done: int
    finished: bool = False


@dataclass
class JobFailed(Exception):
    """The job's input is unusable: the job fails and everything it wrote is rolled back."""

    reason: str
    rejects: list[Any] = field(default_factory=list)

    def __str__(self) -> str:
        return self.reason


class JobRun(Protocol):
    def step(self, *, deadline: float, max_rows: int) -> Progress:
        """Do one batch of work, writing through the current transaction."""

    def close(self) -> None: ...


class JobKind(Protocol):
    def open(self, job: Job) -> JobRun: ...

    def finish(self, job: Job) -> None:
        """Called in the transaction that marks the job completed."""

    def discard(self, job: Job) -> None:
        """Remove everything the job wrote; called in the transaction that ends it."""

    def record_failure(self, job: Job, failure: JobFailed) -> None:
        """Keep what explains the failure (after `discard`, in the same transaction)."""

    def sweep(self) -> None:
        """Periodic housekeeping of the kind's own (expired files, say); may do nothing."""


KIND_CLASSES = {
    Kind.IMPORT: "collect.imports.job.ImportKind",
    Kind.EXPORT: "collect.exports.job.ExportKind",
}


@cache
def kind_for(kind: str) -> JobKind:
    return import_string(KIND_CLASSES[Kind(kind)])()


def all_kinds() -> list[JobKind]:
    return [kind_for(kind) for kind in KIND_CLASSES]
