"""The export job kind: the records of a date range, segment by segment, into a CSV file.

Each batch reads a range of lines of one segment (COPY TO on PostgreSQL) and appends it to
the export's file; the checkpoint (segment, last line, the file's pieces and their committed
sizes) commits with the batch. A resumed run first cuts its piece back to the committed size,
so every row is written once; after a lost run it writes a new piece instead (see
collect/exports/storage.py). Between batches nothing is held: no cursor, no transaction.
"""

import os
import time
from datetime import datetime
from typing import BinaryIO

from django.conf import settings
from django.db import transaction

from collect.datasets.cells import csv_bytes, neutralised
from collect.datasets.stores import TimeFilter, segment_store
from collect.exports.params import ExportCheckpoint, ExportParams, PlannedSegment
from collect.exports.storage import (
    Pieces,
    expired_files_delete,
    export_files_delete,
    piece_name,
    piece_path,
)
from collect.jobs.kinds import Description, JobFailed, Progress
from collect.jobs.models import Job
from collect.jobs.states import Status

LINES_PER_QUERY = 50_000  # ~0.1 s of COPY at most; fewer when the time left is shorter
# At least this many: a query's fixed cost (a far or busy database) must not shrink the
# ranges to a line or two, where they would stay.
MIN_LINES_PER_QUERY = 5_000


class ExportKind:
    def open(self, job: Job) -> "ExportRun":
        return ExportRun(job)

    def finish(self, job: Job) -> None:
        pass  # the committed pieces are the file: completed, it can be downloaded

    def discard(self, job: Job) -> None:
        transaction.on_commit(lambda: export_files_delete(job.id))

    def record_failure(self, job: Job, failure: JobFailed) -> None:
        pass

    def describe(self, job: Job) -> Description:
        params = ExportParams.from_job(job)
        return Description(
            work_done=ExportCheckpoint.from_job(job).scanned,
            work_total=params.lines_total,
            export_range=params.range,  # type: ignore[arg-type]
            downloadable=job.status == Status.COMPLETED,
        )


def export_sweep(now: datetime) -> None:
    expired_files_delete(older_than=settings.COLLECT_EXPORT_TTL)


def export_pieces(job: Job) -> Pieces:
    """The export's file pieces and their committed sizes (exports checkpointed before pieces
    existed wrote one file, `<job>.csv.part`, renamed to `<job>.csv` when complete)."""
    checkpoint = job.checkpoint
    if "pieces" in checkpoint:
        return [list(piece) for piece in checkpoint["pieces"]]
    if "size" not in checkpoint:
        return []
    suffix = "csv" if job.status == Status.COMPLETED else "csv.part"
    return [[f"{job.id}.{suffix}", checkpoint["size"]]]


class ExportRun:
    def __init__(self, job: Job) -> None:
        self.job = job
        self.params = ExportParams.from_job(job)
        self.plan = self.params.plan()
        checkpoint = ExportCheckpoint.from_job(job)
        self.segment = checkpoint.segment
        self.line = checkpoint.line
        self.scanned = checkpoint.scanned
        self.pieces = export_pieces(job)
        self.rows = job.rows_done
        self.pace = 1e-6  # seconds a line; each query measures it again
        self.store = segment_store()
        self.file = self._open()

    def _open(self) -> BinaryIO:
        # Files no checkpoint names are lost runs' (a worker still writing to one writes to
        # a file nobody has once it is gone).
        export_files_delete(self.job.id, keep={name for name, _ in self.pieces})
        # A lost run's worker may still write to its piece: go on in a new one.
        if not self.pieces or self.job.last_error:
            self._give_up_last_piece()
            self.pieces.append([piece_name(self.job.id, len(self.pieces)), 0])
        name, size = self.pieces[-1]
        path = piece_path(name)
        stream = open(path, "r+b" if path.exists() else "w+b")  # noqa: SIM115 - kept open for the run
        stream.truncate(size)  # whatever was written after the last checkpoint goes
        stream.seek(size)
        if len(self.pieces) == 1 and size == 0:
            header = self.params.header
            if not self.params.raw:  # column names come from the file, like any cell
                header = [neutralised(name) for name in header]
            stream.write(csv_bytes([header]))
        return stream

    def _give_up_last_piece(self) -> None:
        """Keep only the committed bytes of the last piece, so that runs lost one after the
        other (a disk that stays full) do not fill the disk with what they never committed.
        An empty one goes: a worker still writing to it writes to a file nobody has."""
        if not self.pieces:
            return
        name, size = self.pieces[-1]
        path = piece_path(name)
        if size == 0:
            self.pieces.pop()
            path.unlink(missing_ok=True)
        elif path.exists():
            os.truncate(path, size)

    def step(self, *, deadline: float, max_rows: int) -> Progress:
        plan = self.plan
        rows = 0
        while rows < max_rows and self.segment < len(plan):
            now = time.monotonic()
            if now >= deadline:
                break
            segment = plan[self.segment]
            # As many lines as fit in the batch's time left, at the pace measured so far.
            fit = max(MIN_LINES_PER_QUERY, int((deadline - now) / self.pace) + 1)
            span = min(LINES_PER_QUERY, max_rows - rows, fit)
            up_to = min(self.line + span, segment.last_line)
            rows += self.store.export(
                segment.table,
                self.file.write,
                columns=self.params.columns,
                after_line=self.line,
                up_to_line=up_to,
                timestamp=self._timestamp_filter(segment),
                raw=self.params.raw,
            )
            self.pace = (time.monotonic() - now) / max(1, up_to - self.line)
            self.scanned += up_to - self.line
            self.line = up_to
            if self.line >= segment.last_line:
                self.segment, self.line = self.segment + 1, 0
        self.file.flush()
        self.rows += rows
        self.pieces[-1][1] = self.file.tell()
        return Progress(
            checkpoint=ExportCheckpoint(
                segment=self.segment, line=self.line, scanned=self.scanned, pieces=self.pieces
            ).to_json(),
            rows_done=self.rows,
            rows_rejected=0,
            bytes_done=sum(size for _, size in self.pieces),
            finished=self.segment >= len(plan),
        )

    def _timestamp_filter(self, segment: PlannedSegment) -> TimeFilter | None:
        if not segment.filter or segment.timestamp_index is None:
            return None  # the whole segment is in the range (known when the export began)
        return TimeFilter(segment.timestamp_index, self.params.start, self.params.end)

    def close(self) -> None:
        self.file.close()
