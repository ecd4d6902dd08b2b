"""What an export job keeps in its JSON fields: its plan and its checkpoint."""

from dataclasses import dataclass, field
from typing import Any

from collect.jobs.kinds import JobData
from collect.jobs.models import Job


@dataclass(frozen=True)
class PlannedSegment(JobData):
    table: str
    timestamp_index: int | None
    filter: bool  # whether its rows are filtered by time (else all of them are in range)
    last_line: int
    rows: int = 0  # of its lines, for sizing queries (0: planned before it was kept)
    # The columns (0-based) where a cell may start like a formula; None: any may.
    formula_columns: list[int] | None = None

    def lines_for(self, rows: int) -> int:
        """About how many of its lines hold `rows` rows: a store's line may be a page."""
        if not self.rows:
            return rows
        return max(1, rows * self.last_line // self.rows)


@dataclass(frozen=True)
class ExportParams(JobData):
    range: dict[str, str | None]  # {"from": …, "to": …} as the user wrote them, to show
    start: int  # [start, end) in µs since the epoch
    end: int
    header: list[str]
    columns: list[int]  # 1-based, in the dataset's columns
    raw: bool  # no neutralising of formula cells
    segments: list[dict[str, Any]]  # PlannedSegment.to_json() each, in order
    lines_total: int

    @classmethod
    def from_job(cls, job: Job) -> "ExportParams":
        return cls.from_json(job.params)

    def plan(self) -> list[PlannedSegment]:
        return [PlannedSegment.from_json(segment) for segment in self.segments]


@dataclass(frozen=True)
class ExportCheckpoint(JobData):
    segment: int = 0  # the plan's segment being read
    line: int = 0  # its last line written
    scanned: int = 0  # lines of the plan read so far
    # The file's pieces and their committed sizes, [name, size] each (see storage.py).
    pieces: list[list[Any]] = field(default_factory=list)

    @classmethod
    def from_job(cls, job: Job) -> "ExportCheckpoint":
        return cls.from_json(job.checkpoint)
