"""The SQLite segment store: executemany in, SELECT out.

`line` is the rowid itself, given by SQLite in the order rows go in: the file's. A block of
records the import has checked goes in as csv.reader's rows of its bytes, straight from C
to SQLite with no row in Python. Identifiers are quoted by the backend, values are
parameters. Exports filter by `collect_timestamp(text)`, a function of this store's.
"""

import csv
import io
import sqlite3
from collections.abc import Callable, Collection, Iterable

from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper

from collect.datasets.cells import csv_bytes, neutralised
from collect.datasets.stores.base import (
    Batch,
    RecordBlock,
    SegmentStore,
    TimeFilter,
    value_columns,
)
from collect.timestamps import timestamp_or_none


class SqliteStore(SegmentStore):
    vendor = "sqlite"

    def takes_as_is(self, data: bytes) -> bool:
        # Text that is not UTF-8 is found by the loader's decode, and the batch is then read
        # again by Python's reader (InsertLoader.load): checking it first cost 0.9 ns a byte
        # of the import's ~27.
        return True

    def max_width(self) -> int:
        connection.ensure_connection()
        return connection.connection.getlimit(sqlite3.SQLITE_LIMIT_COLUMN) - 1

    def create(self, table: str, width: int) -> None:
        values = ", ".join(f"{_quoted(name)} text not null" for name in value_columns(width))
        with connection.cursor() as cursor:  # an "integer primary key" is the rowid
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {_quoted(table)} (line integer primary key, {values})"
            )

    def loader(self, table: str, width: int) -> "InsertLoader":
        return InsertLoader(table, width)

    def drop(self, table: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {_quoted(table)}")

    def last_line(self, table: str) -> int:
        with connection.cursor() as cursor:  # the rowid's maximum: the end of its b-tree
            cursor.execute(f"SELECT coalesce(max(line), 0) FROM {_quoted(table)}")
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
        names = ", ".join(_quoted(value_columns(number)[-1]) for number in columns)
        where = "line > %s AND line <= %s"
        parameters = [after_line, up_to_line]
        if timestamp is not None:
            column = f"collect_timestamp({_quoted(value_columns(timestamp.column + 1)[-1])})"
            where += f" AND {column} >= %s AND {column} < %s"
            parameters += [timestamp.start, timestamp.end]
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {names} FROM {_quoted(table)} WHERE {where} ORDER BY line", parameters
            )
            rows = cursor.fetchall()
        places = [place for place, number in enumerate(columns) if number in neutralise]
        if places:
            rows = [list(row) for row in rows]
            for row in rows:
                for place in places:
                    row[place] = neutralised(row[place])
        write(csv_bytes(rows))
        return len(rows)

    def connection_created(self, connection: BaseDatabaseWrapper) -> None:
        # collect_timestamp(text): a value's timestamp in µs since the epoch, NULL for what
        # is not one (the import has checked every value it stored).
        connection.connection.create_function(
            "collect_timestamp", 1, timestamp_or_none, deterministic=True
        )


class InsertLoader:
    def __init__(self, table: str, width: int) -> None:
        names = ", ".join(_quoted(name) for name in value_columns(width))
        placeholders = ", ".join(["?"] * width)  # sqlite3's own: see `load`
        self.insert_sql = f"INSERT INTO {_quoted(table)} ({names}) VALUES ({placeholders})"
        self.last_line_sql = f"SELECT coalesce(max(line), 0) FROM {_quoted(table)}"
        self.forget_sql = f"DELETE FROM {_quoted(table)} WHERE line > ?"

    def load(self, batch: Batch) -> None:
        # On sqlite3's connection itself, in the transaction Django began: Django's cursor
        # keeps every row of an executemany() to look at the first, which cost the import a
        # fifth of its time. Its errors are made Django's all the same.
        connection.ensure_connection()
        sqlite = connection.connection
        with connection.wrap_database_errors:
            before = sqlite.execute(self.last_line_sql).fetchone()[0]
            try:
                self._insert(sqlite, batch(True))
            except UnicodeDecodeError:
                # A block's bytes that are not UTF-8: this batch again from Python's reading,
                # which rejects their rows. The rows of the batch so far go; the lines are
                # rowids, given in order, so they are all past the last line before it.
                sqlite.execute(self.forget_sql, [before])
                self._insert(sqlite, batch(False))

    def _insert(self, sqlite: sqlite3.Connection, blocks: Iterable[RecordBlock]) -> None:
        for block in blocks:
            if block.raw is None:
                sqlite.executemany(self.insert_sql, block.rows)
                continue
            # Decoded a piece at a time as csv reads it: a StringIO of the whole block
            # copies it at up to 4 bytes a character (csv.reader over one: 8.8 ns a
            # byte of the realistic file, over this 7.3).
            text = io.TextIOWrapper(io.BytesIO(block.raw), encoding="utf-8", newline="")
            rows = csv.reader(text, strict=True)  # iterated by sqlite3, in C
            stored = sqlite.executemany(self.insert_sql, rows).rowcount
            if stored != block.count:  # csv read them otherwise than the check
                raise AssertionError(f"stored {stored} rows of {block.count}")


def _quoted(name: str) -> str:
    return connection.ops.quote_name(name)
