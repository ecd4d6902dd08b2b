"""The PostgreSQL segment store: COPY in, COPY out.

COPY parses the CSV itself, so the bytes of a block Python has checked go in as they are.
A segment is its value columns only, in the heap's order: COPY appends, so that is the
file's, but for a row that COPY puts in room left on an earlier page (autovacuum, which would
offer it the room of a rolled-back batch too, is off until the segment is sealed). A store
"line" is a heap page, and exports read ranges of pages by TID range scans, which need no
index: an identity column cost COPY a third more time, and its BRIN index a scan of the
whole table at the end. Each row is in exactly one range, so an export has it once. Identifiers are
composed with psycopg.sql, values are parameters.
"""

import csv
import io
import logging
import os
import re
import select
import socket
from collections.abc import Callable, Collection, Iterable
from queue import Queue
from typing import Any

from django.db import DatabaseError, DataError, connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import ClientCursor, errors, pq, sql
from psycopg.copy import QueuedLibpqWriter

from collect.datasets.cells import FORMULA_STARTS, neutralised_quoted
from collect.datasets.stores.base import (
    Batch,
    RecordBlock,
    RecordTooBig,
    SegmentStore,
    TimeFilter,
    value_columns,
)
from collect.timestamps import FIRST_MOMENT, LAST_MOMENT, moment_iso

log = logging.getLogger(__name__)
MAX_COLUMNS = 1600  # a table's hard limit, `line` included
# Batches refused in a row before a file's bytes are no longer offered as they are (a file
# whose line ends change from line to line would otherwise be sent twice over).
MAX_REFUSALS_IN_A_ROW = 3
ROWS_PER_WRITE = 1024  # rows of an export, joined into one write
# Columns an export neutralises in SQL, at most; past that, the worker does. A CASE costs
# the database 50-110 ns a cell; the worker (cells.neutralised_quoted) ~2 ns a byte and
# 150-350 ns a formula-like cell. Ratios to `psql \copy`, SQL / worker: 28 of 30 columns
# 0.6 / 1.0; 8 of 10 short ones 0.6-0.9 / 0.8-1.2; 6 of 10 about even; 4 or 5 of 6 short
# ones, most of their cells formula-like, 0.7 / 0.45-0.55.
MAX_NEUTRALISED_IN_SQL = 5
SEND_BUFFER_BYTES = 1 << 18  # Linux doubles it for its own bookkeeping
_END_OF_COPY = re.compile(rb"^\\\.\r?$", re.MULTILINE)  # COPY stops reading at a "\." line


class PostgresStore(SegmentStore):
    vendor = "postgresql"

    def takes_as_is(self, data: bytes) -> bool:
        return reads_alike(data)

    def max_width(self) -> int:
        return MAX_COLUMNS - 1

    def create(self, table: str, width: int) -> None:
        values = sql.SQL(", ").join(
            sql.SQL("{} text not null").format(sql.Identifier(name))
            for name in value_columns(width)
        )
        _execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}) WITH ({})").format(
                sql.Identifier(table), values, _autovacuum(False)
            )
        )

    def connection_created(self, connection: BaseDatabaseWrapper) -> None:
        # Keep what the kernel holds of COPY's data short, as the queue (_ShortQueueWriter):
        # Linux grows a socket's send buffer to 4 MB by itself, which COPY must parse before
        # a batch can commit (measured: 60-120 ms of a pause). SEND_BUFFER_BYTES still keeps
        # the database busy. A Unix socket's buffer is short already.
        with socket.socket(fileno=os.dup(connection.connection.pgconn.socket)) as sock:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)

    def loader(self, table: str, width: int) -> "CopyLoader":
        return CopyLoader(table, width)

    def seal(self, table: str) -> None:
        # No row is added any more: vacuuming it may now free what rolled-back batches left.
        _execute(
            sql.SQL("ALTER TABLE {} SET ({})").format(sql.Identifier(table), _autovacuum(True))
        )
        # The import completes with this transaction, and then its upload is deleted: it
        # must be on disk first (see CopyLoader.load).
        _execute(sql.SQL("SET LOCAL synchronous_commit = on"))

    def drop(self, table: str) -> None:
        _execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))

    def last_line(self, table: str) -> int:
        with connection.cursor() as cursor:  # its pages: no row is on a page past them
            cursor.execute(
                "SELECT pg_relation_size(%s) / current_setting('block_size')::int", [table]
            )
            return cursor.fetchone()[0]

    def export(
        self,
        table: str,
        write: Callable[[bytes], object],
        *,
        columns: list[int],
        after_line: int,
        up_to_line: int,
        timestamp: TimeFilter | None,
        neutralise: Collection[int],
    ) -> int:
        selected, options, in_worker = _selection(columns, neutralise)
        if in_worker:
            write = _neutralising(write)
        # Lines after_line + 1 … up_to_line are the pages after_line … up_to_line - 1.
        where: list[sql.Composable] = [sql.SQL("ctid >= %s::tid AND ctid < %s::tid")]
        parameters: list[object] = [f"({after_line},0)", f"({up_to_line},0)"]
        if timestamp is not None:
            column = sql.SQL("{}::timestamptz").format(  # sessions are UTC: naive means UTC
                sql.Identifier(value_columns(timestamp.column + 1)[-1])
            )
            # A bound past what a date-time can hold bounds nothing (to 9999-12-31, say).
            if timestamp.start > FIRST_MOMENT:
                where.append(sql.SQL("{} >= %s::timestamptz").format(column))
                parameters.append(moment_iso(timestamp.start))
            if timestamp.end <= LAST_MOMENT:
                where.append(sql.SQL("{} < %s::timestamptz").format(column))
                parameters.append(moment_iso(timestamp.end))
        # No ORDER BY: a TID range scan reads the pages in order (see the module).
        query = sql.SQL("COPY (SELECT {} FROM {} WHERE {}) TO STDOUT ({})").format(
            selected, sql.Identifier(table), sql.SQL(" AND ").join(where), options
        )
        with connection.cursor() as cursor:
            # A segment fresh from its import has no statistics, and without them the planner
            # may scan the whole table for each range, in parallel and compiled: read the
            # range's pages, plainly.
            cursor.execute(
                "SET LOCAL enable_seqscan = off; SET LOCAL jit = off; "
                "SET LOCAL max_parallel_workers_per_gather = 0"
            )
        return _copy_out(_text(query), parameters, write)


class CopyLoader:
    """COPY FROM STDIN of a batch's blocks: their own bytes where the store takes them as
    they are, else the parsed rows written out again as CSV."""

    def __init__(self, table: str, width: int) -> None:
        names = sql.SQL(", ").join(sql.Identifier(name) for name in value_columns(width))
        self.copy_sql = _text(
            sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, FORCE_NOT_NULL ({}))").format(
                sql.Identifier(table), names, names
            )
        )
        self.refused_in_a_row = 0

    def load(self, batch: Batch) -> None:
        # A batch's commit need not wait for the disk: a crash of the database that loses it
        # loses its checkpoint with it, and the import goes on from the one before.
        _execute(sql.SQL("SET LOCAL synchronous_commit = off"))
        try:
            self._load_with_fallback(batch)
        except DatabaseError as error:
            # program_limit_exceeded: a row over PostgreSQL's size limit, say.
            if (getattr(error.__cause__, "sqlstate", None) or "").startswith("54"):
                raise RecordTooBig(str(error)) from error
            raise

    def _load_with_fallback(self, batch: Batch) -> None:
        if self.refused_in_a_row >= MAX_REFUSALS_IN_A_ROW:
            self._copy(batch(False))  # the file's bytes keep being refused: stop offering them
            return
        try:
            with transaction.atomic():  # a savepoint: a refused COPY takes only this batch
                self._copy(batch(True))
            self.refused_in_a_row = 0
        except DataError as error:  # the bytes, not the connection: that is no DataError
            # PostgreSQL read some block differently from Python (mixed line ends, say): do
            # this batch again from Python's own reading; the next one is offered as is.
            log.warning("COPY refused a file's bytes (%s); re-encoding this batch", error)
            self.refused_in_a_row += 1
            self._copy(batch(False))

    def _copy(self, blocks: Iterable[RecordBlock]) -> None:
        sent = 0
        line_end = None  # COPY takes the first line's line end and refuses any other
        with connection.cursor() as cursor:
            # Django wraps execute()'s errors, not COPY's: make them Django's too.
            writer = _ShortQueueWriter(cursor.cursor)
            with connection.wrap_database_errors, cursor.copy(self.copy_sql, writer=writer) as copy:
                for block in blocks:
                    line_end = line_end or block.line_end
                    if block.raw is None:
                        copy.write(_as_csv(block.rows, line_end))
                    else:
                        copy.write(block.raw)
                    sent += block.count
            if cursor.rowcount != sent:  # COPY read the CSV otherwise than Python did
                raise DataError(f"COPY stored {cursor.rowcount} rows of {sent}")


class _ShortQueueWriter(QueuedLibpqWriter):
    """psycopg's writer that sends from a thread of its own, so that the import checks the
    next block while COPY parses this one, with at most ~1 MiB queued (its pieces are 128
    KiB at most) instead of up to 128 MiB: what is queued when a batch ends, COPY must parse
    before the batch commits, and a pause waits for that."""

    def __init__(self, cursor: Any) -> None:
        super().__init__(cursor)
        self._queue = Queue(maxsize=8)  # type: ignore[assignment]  # psycopg's own subclasses it


def reads_alike(data: bytes) -> bool:
    """Whether COPY (FORMAT csv) parses `data`, whole UTF-8 records that Python's csv.reader
    has accepted and whose every quote opens or closes a whole field, into the same values.
    Then only a line that is just a backslash and a period differs: PostgreSQL's end of
    data. Read as bytes: UTF-8 writes no character but ASCII with ASCII bytes."""
    return b"\\" not in data or not _END_OF_COPY.search(data)


def _as_csv(rows: list[list[Any]], line_end: str) -> str:
    # Every field quoted: a CR or LF in a value is then data whatever the line ends, and a
    # value "\\." cannot end COPY's input.
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=line_end, quoting=csv.QUOTE_ALL).writerows(rows)
    return buffer.getvalue()


def _copy_out(query: str, parameters: list[object], write: Callable[[Any], object]) -> int:
    """Run a COPY … TO STDOUT, its rows' bytes to `write`; returns the rows. Read from libpq
    directly: psycopg's Copy makes each row a round of its generators, which cost the worker
    more per row than PostgreSQL's making of it (0.9 against 0.55 µs a row). Rows go to
    `write` many at a time: a call a row cost the worker a third of its time."""
    conn = connection.connection
    statement = ClientCursor(conn).mogrify(query, parameters).encode()
    pgconn = conn.pgconn
    with connection.wrap_database_errors, conn.lock:
        pgconn.send_query(statement)
        result = _last_result(pgconn)
        if result.status != pq.ExecStatus.COPY_OUT:
            raise errors.error_from_result(result)
        read, rows = pgconn.get_copy_data, 0
        pending: list[bytes] = []
        keep = pending.append

        def write_pending() -> None:
            if pending:
                write(b"".join(pending))
                pending.clear()

        while True:
            size, data = read(1)
            if size > 0:
                keep(data)
                rows += 1
                if len(pending) >= ROWS_PER_WRITE:
                    write_pending()
            elif size == 0:  # nothing yet: write what came, then wait for more
                write_pending()
                select.select([pgconn.socket], [], [])
                pgconn.consume_input()
            else:
                break
        write_pending()
        result = _last_result(pgconn)
        if result.status != pq.ExecStatus.COMMAND_OK:
            raise errors.error_from_result(result)
        return rows


def _last_result(pgconn: pq.abc.PGconn) -> pq.abc.PGresult:
    """The next result once it has come whole (of a COPY: the end of its rows)."""
    while pgconn.is_busy():
        select.select([pgconn.socket], [], [])
        pgconn.consume_input()
    result = pgconn.get_result()
    if result is None:
        raise errors.OperationalError(pgconn.get_error_message() or "no result")
    if result.status != pq.ExecStatus.COPY_OUT:
        while pgconn.get_result() is not None:  # the end of this command's results
            pass
    return result


def _selection(
    columns: list[int], neutralise: Collection[int]
) -> tuple[sql.Composable, sql.Composable, bool]:
    """The select list and COPY's options for `columns`, and whether the worker neutralises
    the `neutralise` columns (see MAX_NEUTRALISED_IN_SQL): then COPY quotes their cells."""
    names = {number: sql.Identifier(value_columns(number)[-1]) for number in columns}
    in_worker = len(neutralise) > MAX_NEUTRALISED_IN_SQL
    selected = sql.SQL(", ").join(
        _neutralised(name) if number in neutralise and not in_worker else name
        for number, name in names.items()
    )
    if not in_worker:
        return selected, sql.SQL("FORMAT csv"), False
    quoted = sql.SQL(", ").join(names[number] for number in columns if number in neutralise)
    return selected, sql.SQL("FORMAT csv, FORCE_QUOTE ({})").format(quoted), True


def _neutralising(write: Callable[[bytes], object]) -> Callable[[bytes], object]:
    # COPY TO sends each record by itself, and _copy_out writes whole ones.
    return lambda records: write(neutralised_quoted(records))


def _neutralised(column: sql.Identifier) -> sql.Composed:
    # ascii() reads the first character's code without building a string: the check costs
    # ~15 % of an export's time where left(column, 1) cost ~85 %.
    codes = sql.SQL(", ").join(sql.Literal(ord(start)) for start in FORMULA_STARTS)
    return sql.SQL("CASE WHEN ascii({0}) IN ({1}) THEN '''' || {0} ELSE {0} END").format(
        column, codes
    )


def _autovacuum(enabled: bool) -> sql.Composed:
    on = sql.Literal(enabled)
    return sql.SQL("autovacuum_enabled = {0}, toast.autovacuum_enabled = {0}").format(on)


def _text(query: sql.Composable) -> str:
    connection.ensure_connection()
    return query.as_string(connection.connection)


def _execute(query: sql.Composable) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_text(query))
