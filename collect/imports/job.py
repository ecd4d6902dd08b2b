"""The import job kind: CSV file in, records into the job's segment, batch by batch."""

from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import transaction

from collect.datasets.services import segment_catalog
from collect.datasets.stores import RecordTooBig, segment_store, segment_table
from collect.files import upload_delete, upload_open
from collect.imports.compressed import CappedGzipReader, InputError, open_input
from collect.imports.csvsource import Block, CsvSource, Reject
from collect.imports.models import RejectedRow
from collect.imports.params import ImportCheckpoint, ImportParams, OnError
from collect.jobs.kinds import Deadline, Description, JobFailed, Progress
from collect.jobs.models import Job

# The first block of a batch is small, so that the database has rows to work on sooner.
FIRST_BLOCK_BYTES, MAX_BLOCK_BYTES = 1 << 16, 1 << 30


class ImportKind:
    def open(self, job: Job) -> "ImportRun":
        return ImportRun(job)

    def finish(self, job: Job) -> None:
        params, checkpoint = ImportParams.from_job(job), ImportCheckpoint.from_job(job)
        store, table = segment_store(), segment_table(job.id)
        store.seal(table)
        segment_catalog(
            dataset_id=job.dataset_id,
            job_id=job.id,
            table=table,
            width=len(params.columns),
            rows=job.rows_done,
            timestamp_index=params.timestamp_index,
            default_timestamp=params.default_timestamp,
            last_line=store.last_line(table),
            days=(checkpoint.first_day, checkpoint.last_day),
            formula_columns=checkpoint.formula_columns,
        )
        transaction.on_commit(lambda: upload_delete(params.path))

    def discard(self, job: Job) -> None:
        segment_store().drop(segment_table(job.id))
        job.rejected_rows.all().delete()
        path = ImportParams.from_job(job).path
        transaction.on_commit(lambda: upload_delete(path))

    def record_failure(self, job: Job, failure: JobFailed) -> None:
        _save_rejects(job, failure.rejects)

    def describe(self, job: Job) -> Description:
        params = ImportParams.from_job(job)
        return Description(
            work_done=job.bytes_done,
            work_total=job.bytes_total,
            filename=params.filename,
            upload_id=params.upload_id,
            has_rejects=True,
        )


class ImportRun:
    def __init__(self, job: Job) -> None:
        self.job = job
        self.params = params = ImportParams.from_job(job)
        checkpoint = ImportCheckpoint.from_job(job)
        self.days = (checkpoint.first_day, checkpoint.last_day)
        known = checkpoint.formula_columns
        self.rows_done = job.rows_done
        self.rows_rejected = job.rows_rejected
        self.rejects: list[Reject] = []
        self.bytes_per_row = 256  # a first guess; each block then measures it
        try:
            self.file = upload_open(params.path)
        except FileNotFoundError:
            raise JobFailed("the uploaded file is gone from storage") from None
        self.stream = open_input(self.file, limit=settings.COLLECT_MAX_UPLOAD_BYTES)
        self.store = segment_store()
        self.source = CsvSource(
            self.stream,
            offset=checkpoint.offset,
            line=checkpoint.line,
            columns=params.columns,
            timestamp_index=params.timestamp_index,
            formula_columns=range(len(params.columns)) if known is None else known,
        )
        table = segment_table(job.id)
        self.store.create(table, len(params.columns))
        self.loader = self.store.loader(table, len(params.columns))

    def step(self, *, deadline: Deadline, max_rows: int) -> Progress:
        start = (self.source.offset, self.source.line, self.rows_done, self.rows_rejected)

        def batch(as_is: bool) -> Iterator[Block]:
            # From the batch's start every time: the store may ask for it again.
            offset, line, self.rows_done, self.rows_rejected = start
            self.source.rewind(offset, line)
            self.rejects = []
            return self._blocks(deadline, max_rows, as_is)

        try:
            self.loader.load(batch)
        except InputError as error:
            raise JobFailed(str(error)) from None
        except RecordTooBig as error:
            raise JobFailed(f"a record is too big for the database: {error}") from None
        _save_rejects(self.job, self.rejects)  # after the load: one thing at a time
        first_day, last_day = self.days
        return Progress(
            checkpoint=ImportCheckpoint(
                offset=self.source.offset,
                line=self.source.line,
                first_day=first_day,
                last_day=last_day,
                formula_columns=sorted(self.source.formula_columns),
            ).to_json(),
            rows_done=self.rows_done,
            rows_rejected=self.rows_rejected,
            bytes_done=self._bytes_read(),
            finished=self.source.finished,
        )

    def _blocks(self, deadline: Deadline, max_rows: int, as_is: bool) -> Iterator[Block]:
        raw_if = self.store.takes_as_is if as_is else None
        rows_left = max_rows
        size = FIRST_BLOCK_BYTES
        while rows_left > 0 and not deadline.passed():
            records_before = self.rows_done + self.rows_rejected
            offset_before = self.source.offset
            max_bytes = min(size, rows_left * self.bytes_per_row)
            block = self.source.read_block(max_bytes=max_bytes, raw_if=raw_if)
            size = MAX_BLOCK_BYTES
            if block is None:
                break
            self._take(block)
            if block.count:
                yield block
            records = self.rows_done + self.rows_rejected - records_before
            rows_left -= records
            if records:
                self.bytes_per_row = max(1, (self.source.offset - offset_before) // records)

    def _bytes_read(self) -> int:
        """Progress through the stored file, which is what `bytes_total` counts."""
        if isinstance(self.stream, CappedGzipReader):
            if self.source.finished:
                return self.job.bytes_total
            return min(self.stream.compressed_offset(), self.job.bytes_total)
        return self.source.offset

    def _take(self, block: Block) -> None:
        if block.rejects:
            if self.params.on_error == OnError.ABORT:
                reject = block.rejects[0]
                raise JobFailed(f"line {reject.line}: {reject.reason}", rejects=[reject])
            # Rejected rows are a budget: the first ones are kept to show, the rest counted.
            room = settings.COLLECT_MAX_STORED_REJECTS - self.rows_rejected
            self.rejects += block.rejects[: max(0, room)]
            self.rows_rejected += len(block.rejects)
            limit = self.params.max_rejects
            if limit is not None and self.rows_rejected > limit:
                raise JobFailed(f"more than {limit} rejected rows", rejects=self.rejects)
        self.rows_done += block.count
        if block.first_day is not None:
            first, last = self.days
            self.days = (
                min(block.first_day, first or block.first_day),
                max(block.last_day or block.first_day, last or block.first_day),
            )

    def close(self) -> None:
        self.stream.close()
        self.file.close()


def _save_rejects(job: Job, rejects: list[Any]) -> None:
    RejectedRow.objects.bulk_create(
        RejectedRow(job=job, line=r.line, reason=r.reason, content=r.content) for r in rejects
    )
