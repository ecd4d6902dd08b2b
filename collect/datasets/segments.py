"""Segment tables: each import writes its records into a table of its own.

A segment holds one import's rows: `line` (where the record starts in its file, the
order of the rows), `ts` (microseconds since the epoch, for export ranges) and the values
`c1..cN` as text, exactly as written. A dataset's records are the segments of its completed
imports, so an import becomes visible all at once when its job completes, and rolling one
back is a DROP TABLE, however many rows it wrote.

Rows go in by the fastest route each database offers: COPY on PostgreSQL, executemany on SQLite.
"""

import csv
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connection

RowWriter = Callable[[list[list]], None]


def segment_table(job_id) -> str:
    return f"segment_{job_id.hex}"


def value_columns(width: int) -> list[str]:
    return [f"c{number}" for number in range(1, width + 1)]


def segment_create(table: str, width: int) -> None:
    values = ", ".join(f"{name} text not null" for name in value_columns(width))
    # SQLite stores an "integer primary key" as the rowid itself: no extra index to fill.
    line_type = "integer" if connection.vendor == "sqlite" else "bigint"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {table} "
            f"(line {line_type} primary key, ts bigint not null, {values})"
        )


def segment_drop(table: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")


def segment_exists(table: str) -> bool:
    return table in connection.introspection.table_names()


@contextmanager
def segment_writer(table: str, width: int) -> Iterator[RowWriter]:
    """A function that appends rows (values..., ts, line) in the current transaction."""
    names = value_columns(width)
    column_list = ", ".join([*names, "ts", "line"])
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            copy_sql = (
                f"COPY {table} ({column_list}) FROM STDIN "
                f"(FORMAT csv, FORCE_NOT_NULL ({', '.join(names)}))"
            )
            with cursor.copy(copy_sql) as copy:
                yield lambda rows: copy.write(_as_csv(rows))
        else:
            placeholders = ", ".join(["%s"] * (width + 2))
            insert_sql = f"INSERT INTO {table} ({column_list}) VALUES ({placeholders})"
            yield lambda rows: cursor.executemany(insert_sql, rows)


def _as_csv(rows: list[list]) -> str:
    # CRLF line ends make csv quote any field holding a CR or an LF, as COPY requires.
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()
