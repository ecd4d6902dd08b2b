"""What each kind of job does, behind one small interface the runner drives.

A kind opens a *run* for a claimed job; the runner calls `step` inside a transaction, once
per batch, and commits the batch together with the checkpoint the step returns. Kinds
register themselves (`register_kind`, from their app's `ready`): the engine names none.
"""

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol, Self

from collect.jobs.models import Job


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


class JobData:
    """A kind's own parameters or checkpoint, kept in a job's JSON fields as a dataclass."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        known = {field.name for field in fields(cls)}  # type: ignore[arg-type]
        return cls(**{name: value for name, value in data.items() if name in known})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class Description:
    """What a job shows of its kind's own data (the API's job JSON)."""

    work_done: int  # progress: bytes of an import's file, lines an export has scanned
    work_total: int
    filename: str | None = None
    upload_id: str | None = None
    export_range: dict[str, str] | None = None
    downloadable: bool = False  # a completed job has a file to download
    has_rejects: bool = False  # it keeps rejected rows to list


@dataclass(frozen=True)
class Deadline:
    """When a batch ends: at `at` (time.monotonic()), or sooner once `cut_short()` is true
    (a pause or terminate came in): a step looks at it between its pieces of work."""

    at: float
    cut_short: Callable[[], bool] = lambda: False

    def passed(self) -> bool:
        return time.monotonic() >= self.at or self.cut_short()

    def seconds_left(self) -> float:
        return 0.0 if self.cut_short() else max(0.0, self.at - time.monotonic())


class JobRun(Protocol):
    def step(self, *, deadline: Deadline, max_rows: int) -> Progress:
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

    def describe(self, job: Job) -> Description: ...


_KINDS: dict[str, JobKind] = {}


def register_kind(kind: str, implementation: JobKind) -> None:
    """Make `implementation` run the jobs of `kind` (one of jobs.states.Kind)."""
    _KINDS[kind] = implementation


def kind_for(kind: str) -> JobKind:
    try:
        return _KINDS[kind]
    except KeyError:
        raise LookupError(f"no job kind {kind!r} is registered (is its app installed?)") from None
