"""The export job kind: the records of a date range, segment by segment, into a CSV file.

Each batch reads a range of lines of one segment (COPY TO on PostgreSQL) and appends it to
the export's file; the checkpoint (segment, last line, the file's pieces and their committed
sizes) commits with the batch. A resumed run first cuts its piece back to the committed size,
so every row is written once; after a lost run it writes a new piece instead (see
collect/exports/storage.py). Between batches nothing is held: no cursor, no transaction.
"""

import copy
import logging
import time
from datetime import datetime

from django.conf import settings
from django.db import transaction

from collect.datasets.cells import csv_bytes, neutralised
from collect.datasets.stores import TimeFilter, segment_store
from collect.exports.params import ExportCheckpoint, ExportParams, PlannedSegment
from collect.exports.storage import (
    ExportWriter,
    Pieces,
    PiecesLost,
    expired_files_delete,
    export_files_delete,
    export_writer,
)
from collect.jobs.kinds import Deadline, Description, JobFailed, Progress
from collect.jobs.models import Job
from collect.jobs.states import Status

log = logging.getLogger(__name__)

ROWS_PER_QUERY = 50_000  # ~0.1 s of COPY at most; fewer when the time left is shorter
# At least this many: a query's fixed cost (a far or busy database) must not shrink the
# ranges to a line or two, where they would stay.
MIN_ROWS_PER_QUERY = 5_000


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
        self.pace = 1e-6  # seconds a line; each query measures it again
        self.store = segment_store()
        checkpoint = ExportCheckpoint.from_job(job)
        try:
            self.file = self._open(checkpoint, export_pieces(job), job.rows_done)
        except PiecesLost as lost:
            log.warning("export %s starts again: %s", job.pk, lost)
            export_files_delete(job.id)
            self.file = self._open(ExportCheckpoint(), [], 0)

    def _open(self, checkpoint: ExportCheckpoint, pieces: Pieces, rows: int) -> ExportWriter:
        self.segment = checkpoint.segment
        self.line = checkpoint.line
        self.scanned = checkpoint.scanned
        self.rows = rows
        self.committed = self._progress(pieces)
        writer = export_writer(self.job.id, pieces, after_lost_run=bool(self.job.last_error))
        self.pieces = writer.pieces
        if len(self.pieces) == 1 and self.pieces[0][1] == 0:
            header = self.params.header
            if not self.params.raw:  # column names come from the file, like any cell
                header = [neutralised(name) for name in header]
            writer.write(csv_bytes([header]))
        return writer

    def step(self, *, deadline: Deadline, max_rows: int) -> Progress:
        plan = self.plan
        rows = 0
        while rows < max_rows and self.segment < len(plan):
            if deadline.passed():
                break
            now = time.monotonic()
            segment = plan[self.segment]
            # As many lines as fit in the batch's time left, at the pace measured so far.
            fit = max(
                segment.lines_for(MIN_ROWS_PER_QUERY), int(deadline.seconds_left() / self.pace) + 1
            )
            span = min(segment.lines_for(min(ROWS_PER_QUERY, max_rows - rows)), fit)
            up_to = min(self.line + span, segment.last_line)
            rows += self.store.export(
                segment.table,
                self.file.write,
                columns=self.params.columns,
                after_line=self.line,
                up_to_line=up_to,
                timestamp=self._timestamp_filter(segment),
                neutralise=self._neutralised_columns(segment),
            )
            self.pace = (time.monotonic() - now) / max(1, up_to - self.line)
            self.scanned += up_to - self.line
            self.line = up_to
            if self.line >= segment.last_line:
                self.segment, self.line = self.segment + 1, 0
        self.rows += rows
        finished = self.segment >= len(plan)
        if self.file.commit(final=finished):
            self.committed = self._progress(self.pieces)
        return self.committed  # in a bucket, what is not in a part yet is written again

    def _progress(self, pieces: Pieces) -> Progress:
        """Where the export is, as a checkpoint to go on from."""
        return Progress(
            checkpoint=ExportCheckpoint(
                segment=self.segment,
                line=self.line,
                scanned=self.scanned,
                pieces=copy.deepcopy(pieces),
            ).to_json(),
            rows_done=self.rows,
            rows_rejected=0,
            bytes_done=sum(piece[1] for piece in pieces),
            finished=self.segment >= len(self.plan),
        )

    def _neutralised_columns(self, segment: PlannedSegment) -> frozenset[int]:
        """The columns (1-based, as `columns`) whose formula cells get a leading quote:
        none if raw, else those where the import saw a cell start like a formula."""
        if self.params.raw:
            return frozenset()
        if segment.formula_columns is None:  # not known: any may
            return frozenset(self.params.columns)
        may = {number + 1 for number in segment.formula_columns}
        return frozenset(number for number in self.params.columns if number in may)

    def _timestamp_filter(self, segment: PlannedSegment) -> TimeFilter | None:
        if not segment.filter or segment.timestamp_index is None:
            return None  # the whole segment is in the range (known when the export began)
        return TimeFilter(segment.timestamp_index, self.params.start, self.params.end)

    def close(self) -> None:
        self.file.close()
