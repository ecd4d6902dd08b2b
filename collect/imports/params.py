"""What an import job keeps in its JSON fields: its parameters and its checkpoint."""

from dataclasses import dataclass

from collect.imports.choices import OnError
from collect.jobs.kinds import JobData
from collect.jobs.models import Job

__all__ = ["ImportCheckpoint", "ImportParams", "OnError"]


@dataclass(frozen=True)
class ImportParams(JobData):
    path: str  # the file's name in upload storage
    filename: str  # as the user named it: only ever shown
    upload_id: str | None  # the resumable upload it came from, if any
    columns: list[str]
    on_error: str  # an OnError
    timestamp_index: int | None  # the column rows are dated by (0-based), if any
    default_timestamp: int  # µs since the epoch: the upload time, for rows without one
    max_rejects: int | None = None
    sha256: str | None = None  # of the file's bytes as uploaded: the same file twice is refused

    @classmethod
    def from_job(cls, job: Job) -> "ImportParams":
        return cls.from_json(job.params)


@dataclass(frozen=True)
class ImportCheckpoint(JobData):
    offset: int  # the next byte of the (decompressed) file to read
    line: int  # the file lines read so far
    # The first and last dates of the timestamps imported so far (see Segment).
    first_day: str | None = None
    last_day: str | None = None
    # The columns (0-based) where a cell imported so far may start like a formula; None:
    # not known (checkpointed before they were kept), so any may.
    formula_columns: list[int] | None = None

    @classmethod
    def from_job(cls, job: Job) -> "ImportCheckpoint":
        return cls.from_json(job.checkpoint)
