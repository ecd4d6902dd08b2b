"""The export job kind: the records of a date range, segment by segment, into a CSV file.

Each batch reads a range of lines of one segment (COPY TO on PostgreSQL) and appends it to
`<job>.csv.part`; the checkpoint (segment, last line, file size) commits with the batch. A
resumed run first cuts the file back to the committed size, so every row is written once.
Between batches nothing is held: no cursor, no transaction.
"""

import os
import shutil
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.db import transaction

from collect.datasets import segments
from collect.exports.storage import (
    expired_files_delete,
    export_files_delete,
    final_path,
    partial_path,
)
from collect.jobs.kinds import JobFailed, Progress
from collect.jobs.models import Job

LINES_PER_QUERY = 50_000  # ~0.1 s of COPY at most; fewer when the time left is shorter
COPY_BYTES = 1 << 20


class ExportKind:
    def open(self, job: Job) -> "ExportRun":
        return ExportRun(job)

    def finish(self, job: Job) -> None:
        os.replace(partial_path(job.id), final_path(job.id))  # the file appears whole

    def discard(self, job: Job) -> None:
        transaction.on_commit(lambda: export_files_delete(job.id))

    def record_failure(self, job: Job, failure: JobFailed) -> None:
        pass

    def sweep(self) -> None:
        expired_files_delete(older_than=settings.COLLECT_EXPORT_TTL)


def _take_over(partial: Path, size: int) -> None:
    """Go on in a copy of the committed part of the file. The run before this one was lost
    and its worker may only be frozen: when it wakes up, what it still writes goes to the
    old file, which nobody reads any more."""
    fresh = partial.with_name(f"{partial.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    with open(partial, "rb") as source, open(fresh, "wb") as target:
        shutil.copyfileobj(source, target, COPY_BYTES)
        target.truncate(size)
        target.flush()
        os.fsync(target.fileno())
    os.replace(fresh, partial)


class ExportRun:
    def __init__(self, job: Job) -> None:
        self.job = job
        self.params = job.params
        checkpoint = job.checkpoint or {"segment": 0, "line": 0, "size": 0, "scanned": 0}
        self.segment = checkpoint["segment"]
        self.line = checkpoint["line"]
        self.scanned = checkpoint["scanned"]
        self.rows = job.rows_done
        self.pace = 1e-6  # seconds a line; each query measures it again
        self.file = self._open(checkpoint["size"])

    def _open(self, size: int):
        partial, final = partial_path(self.job.id), final_path(self.job.id)
        if final.exists() and not partial.exists():  # renamed, but completion never committed
            os.replace(final, partial)
        if size and self.job.last_error and partial.exists():
            _take_over(partial, size)
        stream = open(partial, "r+b" if partial.exists() else "w+b")  # noqa: SIM115 - kept open for the run
        stream.truncate(size)  # whatever was written after the last checkpoint goes
        stream.seek(size)
        if size == 0:
            stream.write(segments.csv_bytes([self.params["header"]]))
        return stream

    def step(self, *, deadline: float, max_rows: int) -> Progress:
        plan = self.params["segments"]
        rows = 0
        while rows < max_rows and self.segment < len(plan):
            now = time.monotonic()
            if now >= deadline:
                break
            segment = plan[self.segment]
            # As many lines as fit in the batch's time left, at the pace measured so far.
            span = min(LINES_PER_QUERY, max_rows - rows, int((deadline - now) / self.pace) + 1)
            up_to = min(self.line + span, segment["last_line"])
            rows += segments.segment_export(
                segment["table"],
                self.file.write,
                columns=self.params["columns"],
                after_line=self.line,
                up_to_line=up_to,
                timestamp=self._timestamp_filter(segment),
                raw=self.params["raw"],
            )
            self.pace = (time.monotonic() - now) / max(1, up_to - self.line)
            self.scanned += up_to - self.line
            self.line = up_to
            if self.line >= segment["last_line"]:
                self.segment, self.line = self.segment + 1, 0
        self.file.flush()
        self.rows += rows
        size = self.file.tell()
        return Progress(
            checkpoint={
                "segment": self.segment,
                "line": self.line,
                "size": size,
                "scanned": self.scanned,
            },
            rows_done=self.rows,
            rows_rejected=0,
            bytes_done=size,
            finished=self.segment >= len(plan),
        )

    def _timestamp_filter(self, segment: dict) -> tuple[int, int, int] | None:
        if not segment["filter"]:  # the whole segment is in the range (checked at start)
            return None
        return segment["timestamp_index"], self.params["start"], self.params["end"]

    def close(self) -> None:
        self.file.close()
