"""Segment tables: each import writes its records into a table of its own.

A dataset's records are the segments of its completed imports, so an import becomes visible
all at once when its job completes, and rolling one back is a DROP TABLE, however many rows
it wrote. A segment is `line` (the order of its file) and the values as text, exactly as
written, in `c1..cN`. A row's timestamp is read from its column when an export filters (the
import has checked that every value parses), so loading stores nothing but the values.

Rows go in by each database's fastest path:

- SQLite: executemany of the parsed rows, each numbered with the file line it starts on
  (`line` is the rowid).
- PostgreSQL: COPY parses the CSV itself, so the bytes of a block Python has checked go in
  as they are; `line` is an identity, in file order.
"""

import csv
import io
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from django.db import DataError, connection

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# write(rows, raw, count): `count` records, as rows the way the store wants them (see
# `rows_numbered`) or, where the store takes them (`takes_raw_csv`), as CSV bytes in `raw`.
RowWriter = Callable[[list[list], bytes | None, int], None]


def segment_table(job_id) -> str:
    return f"segment_{job_id.hex}"


def value_columns(width: int) -> list[str]:
    return [f"c{number}" for number in range(1, width + 1)]


def rows_numbered() -> bool:
    """Whether rows given to the writer end with their line number (SQLite)."""
    return connection.vendor != "postgresql"


def takes_raw_csv() -> bool:
    """Whether the writer can take a block's CSV bytes as they are (PostgreSQL)."""
    return connection.vendor == "postgresql"


def timestamp_sql(timestamp_index: int | None, default_timestamp: int) -> str:
    """SQL for a segment row's timestamp in µs since the epoch."""
    if timestamp_index is None:
        return str(int(default_timestamp))
    column = value_columns(timestamp_index + 1)[-1]
    if connection.vendor == "postgresql":  # naive values are UTC: Django's sessions are
        return f"(extract(epoch FROM {column}::timestamptz) * 1000000)::bigint"
    return f"collect_timestamp({column})"  # see register_sqlite_functions


POSTGRES_MAX_COLUMNS = 1600  # a table's hard limit


def max_width() -> int:
    """The most value columns a segment table of this database can have (beside `line`)."""
    if connection.vendor == "postgresql":
        return POSTGRES_MAX_COLUMNS - 1
    connection.ensure_connection()
    return connection.connection.getlimit(sqlite3.SQLITE_LIMIT_COLUMN) - 1


def segment_create(table: str, width: int) -> None:
    values = ", ".join(f"{name} text not null" for name in value_columns(width))
    if connection.vendor == "postgresql":
        columns = f"line bigint generated always as identity, {values}"
    else:  # an "integer primary key" is the rowid itself: no index to fill
        columns = f"line integer primary key, {values}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")


def segment_seal(table: str) -> None:
    """A completed segment is read by ranges of `line`: on PostgreSQL give it a BRIN index,
    which costs next to nothing to build since lines follow the table's physical order
    (SQLite's `line` is already the rowid)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE INDEX IF NOT EXISTS {table}_line ON {table} USING brin (line)")


def segment_last_line(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT coalesce(max(line), 0) FROM {table}")
        return cursor.fetchone()[0]


def segment_export(
    table: str,
    write: Callable[[bytes], object],
    *,
    columns: list[int],
    after_line: int,
    up_to_line: int,
    timestamp: tuple[int, int, int] | None,
    raw: bool,
) -> int:
    """Write the rows with `after_line < line <= up_to_line` as CSV, and, given `timestamp`
    as (column index, start, end), start <= timestamp < end; returns how many. Unless
    `raw`, cells that a spreadsheet would run as a formula are prefixed with a quote."""
    names = [value_columns(number)[-1] for number in columns]
    where = f"line > {int(after_line)} AND line <= {int(up_to_line)}"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            if timestamp is not None:
                index, start, end = timestamp
                column = f"{value_columns(index + 1)[-1]}::timestamptz"  # sessions are UTC
                # A bound past what a date-time can hold bounds nothing (to 9999-12-31, say).
                if start > _FIRST_MOMENT:
                    where += f" AND {column} >= '{_iso(start)}'"
                if end <= _LAST_MOMENT:
                    where += f" AND {column} < '{_iso(end)}'"
            selected = ", ".join(names if raw else map(_neutralised_sql, names))
            # No ORDER BY: the rows of a range come in the table's physical order, which is
            # the order COPY loaded them in; a batch is exact whatever the order inside it.
            copy_sql = f"COPY (SELECT {selected} FROM {table} WHERE {where}) TO STDOUT (FORMAT csv)"
            # A segment fresh from its import (or after a crash, which loses the activity
            # statistics) has no statistics, and without them the planner may scan the whole
            # table for each range, in parallel and compiled: use the BRIN index, plainly.
            cursor.execute(
                "SET LOCAL enable_seqscan = off; SET LOCAL jit = off; "
                "SET LOCAL max_parallel_workers_per_gather = 0"
            )
            with connection.wrap_database_errors, cursor.copy(copy_sql) as copy:
                for data in copy:
                    write(data)
            return cursor.rowcount
        parameters: list[int] = []
        if timestamp is not None:
            index, start, end = timestamp
            column = f"collect_timestamp({value_columns(index + 1)[-1]})"
            where += f" AND {column} >= %s AND {column} < %s"
            parameters = [start, end]
        query = f"SELECT {', '.join(names)} FROM {table} WHERE {where} ORDER BY line"
        cursor.execute(query, parameters)
        rows = cursor.fetchall()
    if not raw:
        rows = [[neutralised(value) for value in row] for row in rows]
    write(csv_bytes(rows))
    return len(rows)


_FIRST_MOMENT = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
_LAST_MOMENT = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)


def _iso(microseconds: int) -> str:
    return (_EPOCH + timedelta(microseconds=microseconds)).isoformat()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralised(value: str) -> str:
    """OWASP's advice against CSV injection: a cell that starts like a formula gets a
    leading single quote, so a spreadsheet shows it as text."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _neutralised_sql(column: str) -> str:
    # ascii() reads the first character's code without building a string: the check costs
    # ~15 % of an export's time where left(column, 1) cost ~85 %.
    codes = ", ".join(str(ord(start)) for start in FORMULA_STARTS)
    return f"CASE WHEN ascii({column}) IN ({codes}) THEN '''' || {column} ELSE {column} END"


def csv_bytes(rows) -> bytes:
    """Rows as CSV with LF line ends, as PostgreSQL's COPY TO writes them. Every field is
    quoted: csv would otherwise leave a field holding a lone CR bare."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL).writerows(rows)
    return buffer.getvalue().encode("utf-8")


def segment_drop(table: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")


def segment_exists(table: str) -> bool:
    return table in connection.introspection.table_names()


@contextmanager
def segment_writer(table: str, width: int) -> Iterator[RowWriter]:
    """A function that appends rows in the current transaction."""
    names = value_columns(width)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            copy_sql = (
                f"COPY {table} ({', '.join(names)}) FROM STDIN "
                f"(FORMAT csv, FORCE_NOT_NULL ({', '.join(names)}))"
            )
            sent = 0

            def write(rows: list[list], raw: bytes | None, count: int) -> None:
                nonlocal sent
                copy.write(_as_csv(rows, width) if raw is None else raw)
                sent += count

            # Django wraps execute()'s errors, not COPY's: make them Django's too.
            with connection.wrap_database_errors, cursor.copy(copy_sql) as copy:
                yield write
            if cursor.rowcount != sent:  # COPY read the CSV otherwise than Python did
                raise DataError(f"COPY stored {cursor.rowcount} rows of {sent}")
        else:
            placeholders = ", ".join(["%s"] * (width + 1))
            insert_sql = (
                f"INSERT INTO {table} ({', '.join([*names, 'line'])}) VALUES ({placeholders})"
            )
            yield lambda rows, raw, count: cursor.executemany(insert_sql, rows)


def _as_csv(rows: list[list], width: int) -> str:
    # CRLF line ends make csv quote any field holding a CR or an LF, as COPY requires; a
    # single column is always quoted, or a value "\." would end COPY's input.
    buffer = io.StringIO()
    quoting = csv.QUOTE_ALL if width == 1 else csv.QUOTE_MINIMAL
    csv.writer(buffer, lineterminator="\r\n", quoting=quoting).writerows(rows)
    return buffer.getvalue()


def register_sqlite_functions(sender, connection, **kwargs) -> None:
    """On each new SQLite connection: collect_timestamp(text), the timestamp of a value the
    import accepted, in µs since the epoch (NULL for anything else)."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            "collect_timestamp", 1, _timestamp_or_none, deterministic=True
        )


def _timestamp_or_none(value: str | None) -> int | None:
    from collect.imports.csvsource import parse_timestamp

    try:
        return parse_timestamp(value)
    except (TypeError, ValueError):
        return None
