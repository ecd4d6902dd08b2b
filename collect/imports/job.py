"""The import job kind: CSV file in, rows into the job's segment table, batch by batch."""

import logging
import time

from django.conf import settings
from django.db import DatabaseError, DataError, transaction

from collect.datasets import segments
from collect.imports.compressed import CappedGzipReader, InputError, open_input
from collect.imports.csvsource import Block, CsvSource, Reject
from collect.imports.models import RejectedRow
from collect.jobs.kinds import JobFailed, Progress
from collect.jobs.models import Job
from collect.uploads.storage import upload_delete, upload_open

log = logging.getLogger(__name__)
ON_ERROR_ABORT = "abort"
ON_ERROR_SKIP = "skip"


class ImportKind:
    def open(self, job: Job) -> "ImportRun":
        return ImportRun(job)

    def finish(self, job: Job) -> None:
        segments.segment_seal(segments.segment_table(job.id))
        transaction.on_commit(lambda: upload_delete(job.params["path"]))

    def discard(self, job: Job) -> None:
        segments.segment_drop(segments.segment_table(job.id))
        job.rejected_rows.all().delete()
        transaction.on_commit(lambda: upload_delete(job.params["path"]))

    def record_failure(self, job: Job, failure: JobFailed) -> None:
        _save_rejects(job, failure.rejects)

    def sweep(self) -> None:
        pass


class ImportRun:
    def __init__(self, job: Job) -> None:
        params, checkpoint = job.params, job.checkpoint
        self.job = job
        self.width = len(params["columns"])
        self.table = segments.segment_table(job.id)
        self.abort_on_reject = params["on_error"] == ON_ERROR_ABORT
        self.max_rejects = params.get("max_rejects")
        self.rows_done = job.rows_done
        self.rows_rejected = job.rows_rejected
        self.bytes_per_row = 256  # a first guess; each block then measures it
        try:
            self.file = upload_open(params["path"])
        except FileNotFoundError:
            raise JobFailed("the uploaded file is gone from storage") from None
        self.stream = open_input(self.file, limit=settings.COLLECT_MAX_UPLOAD_BYTES)
        self.source = CsvSource(
            self.stream,
            offset=checkpoint["offset"],
            line=checkpoint["line"],
            columns=params["columns"],
            timestamp_index=params["timestamp_index"],
            number_rows=segments.rows_numbered(),
            keep_raw=segments.takes_raw_csv(),
        )
        segments.segment_create(self.table, self.width)

    def step(self, *, deadline: float, max_rows: int) -> Progress:
        try:
            return self._step_with_fallback(deadline, max_rows)
        except InputError as error:
            raise JobFailed(str(error)) from None
        except DatabaseError as error:
            if _is_too_big_for_the_store(error):
                raise JobFailed(f"a record is too big for the database: {error}") from None
            raise

    def _step_with_fallback(self, deadline: float, max_rows: int) -> Progress:
        if not self.source.keep_raw:
            return self._step(deadline, max_rows)
        start = (self.source.offset, self.source.line, self.rows_done, self.rows_rejected)
        try:
            with transaction.atomic():  # a savepoint: a failed COPY takes only this batch down
                return self._step(deadline, max_rows)
        except DataError as error:  # the bytes, not the connection: that is no DataError
            # PostgreSQL read some block differently from Python (mixed line ends, say):
            # do this batch again from Python's own reading, and the rest of the file too.
            log.warning(
                "job %s: COPY refused the file's bytes (%s); re-encoding", self.job.pk, error
            )
            offset, line, self.rows_done, self.rows_rejected = start
            self.source.rewind(offset, line)
            self.source.keep_raw = False
            return self._step(deadline, max_rows)

    def _step(self, deadline: float, max_rows: int) -> Progress:
        rows_left = max_rows
        rejects: list[Reject] = []
        with segments.segment_writer(self.table, self.width) as write:
            while rows_left > 0 and time.monotonic() < deadline:
                records_before = self.rows_done + self.rows_rejected
                offset_before = self.source.offset
                block = self.source.read_block(max_bytes=rows_left * self.bytes_per_row)
                if block is None:
                    break
                self._take(block, write, rejects)
                records = self.rows_done + self.rows_rejected - records_before
                rows_left -= records
                if records:
                    self.bytes_per_row = max(1, (self.source.offset - offset_before) // records)
        _save_rejects(self.job, rejects)  # after the COPY: a connection does one thing at a time
        return Progress(
            checkpoint={"offset": self.source.offset, "line": self.source.line},
            rows_done=self.rows_done,
            rows_rejected=self.rows_rejected,
            bytes_done=self._bytes_read(),
            finished=self.source.finished,
        )

    def _bytes_read(self) -> int:
        """Progress through the stored file, which is what `bytes_total` counts."""
        if isinstance(self.stream, CappedGzipReader):
            if self.source.finished:
                return self.job.bytes_total
            return min(self.stream.compressed_offset(), self.job.bytes_total)
        return self.source.offset

    def _take(self, block: Block, write, rejects: list[Reject]) -> None:
        if block.rejects:
            if self.abort_on_reject:
                first = block.rejects[0]
                raise JobFailed(f"line {first.line}: {first.reason}", rejects=[first])
            # Rejected rows are a budget: the first ones are kept to show, the rest counted.
            room = settings.COLLECT_MAX_STORED_REJECTS - self.rows_rejected
            rejects += block.rejects[: max(0, room)]
            self.rows_rejected += len(block.rejects)
            if self.max_rejects is not None and self.rows_rejected > self.max_rejects:
                raise JobFailed(
                    f"more than {self.max_rejects} rejected rows",
                    rejects=rejects[: max(0, room)],
                )
        if block.count:
            write(block.rows, block.raw, block.count)
            self.rows_done += block.count

    def close(self) -> None:
        self.stream.close()
        self.file.close()


def _is_too_big_for_the_store(error: DatabaseError) -> bool:
    """PostgreSQL's program_limit_exceeded: a row over its size limit, say."""
    state = getattr(error.__cause__, "sqlstate", None) or ""
    return state.startswith("54")


def _save_rejects(job: Job, rejects: list[Reject]) -> None:
    RejectedRow.objects.bulk_create(
        RejectedRow(job=job, line=r.line, reason=r.reason, content=r.content) for r in rejects
    )
