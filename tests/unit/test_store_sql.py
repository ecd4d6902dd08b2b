"""The SQL each segment store composes, rendered without a database: identifiers quoted by
composition (psycopg.sql on PostgreSQL, the backend's quote_name on SQLite), values always
parameters. That the SQL does what it says is tested on each database in tests/integration."""

import contextlib

import pytest
from django.db.backends.sqlite3.base import DatabaseOperations

from collect.datasets.stores import TimeFilter, postgres, sqlite
from collect.datasets.stores.postgres import (
    MAX_NEUTRALISED_IN_SQL,
    CopyLoader,
    PostgresStore,
    reads_alike,
)
from collect.datasets.stores.sqlite import InsertLoader, SqliteStore
from collect.timestamps import FIRST_MOMENT, LAST_MOMENT, moment_iso, parse_timestamp

TABLE = "segment_0123abcd"
# What a spreadsheet would run as a formula starts with one of these (collect.datasets.cells).
FORMULA_CODES = "61, 43, 45, 64, 9, 13"  # = + - @ TAB CR


class RecordingConnection:
    """Django's connection as a store module sees it, with no server behind it: SQL is
    rendered (psycopg 3.2+ composes without a connection) and recorded, and a COPY or a
    SELECT gives back `output`."""

    connection = None  # what psycopg's Composable.as_string() is given: none
    wrap_database_errors = contextlib.nullcontext()

    def __init__(self, *, output=(), rowcount=0, ops=None) -> None:
        self.executed: list[tuple[str, object]] = []
        self.copied: list[tuple[str, object]] = []
        self.written: list[bytes | str] = []
        self.output = list(output)
        self.rowcount = rowcount
        self.ops = ops

    def ensure_connection(self) -> None:
        pass

    def cursor(self) -> "RecordingCursor":
        return RecordingCursor(self)


class RecordingCursor:
    def __init__(self, connection: RecordingConnection) -> None:
        self.db = connection
        self.rowcount = connection.rowcount

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, query, params=None) -> None:
        self.db.executed.append((query, params))

    def fetchone(self):
        return self.db.output[0]

    def fetchall(self):
        return self.db.output

    @contextlib.contextmanager
    def copy(self, query, params=None):
        self.db.copied.append((query, params))
        yield RecordingCopy(self.db)


class RecordingCopy:
    def __init__(self, connection: RecordingConnection) -> None:
        self.db = connection

    def __iter__(self):
        return iter(self.db.output)

    def write(self, data) -> None:
        self.db.written.append(data)


@pytest.fixture
def pg(monkeypatch):
    """The PostgreSQL store's module, on a recording connection."""
    recording = RecordingConnection()
    monkeypatch.setattr(postgres, "connection", recording)

    def copy_out(query, parameters, write):  # what runs it reads from libpq itself
        recording.copied.append((query, parameters))
        for data in recording.output:
            write(data)
        return recording.rowcount

    monkeypatch.setattr(postgres, "_copy_out", copy_out)
    return recording


@pytest.fixture
def lite(monkeypatch):
    """The SQLite store's module, on a recording connection that quotes as SQLite does."""
    recording = RecordingConnection(ops=DatabaseOperations(connection=None))
    monkeypatch.setattr(sqlite, "connection", recording)
    return recording


# PostgreSQL


def test_postgres_creates_seals_and_drops_a_segment(pg):
    store = PostgresStore()
    store.create(TABLE, 3)
    store.seal(TABLE)
    store.drop(TABLE)
    assert [query for query, _ in pg.executed] == [
        f'CREATE TABLE IF NOT EXISTS "{TABLE}" ("c1" text not null, "c2" text not null, '
        '"c3" text not null) WITH (autovacuum_enabled = false, toast.autovacuum_enabled = false)',
        f'ALTER TABLE "{TABLE}" SET (autovacuum_enabled = true, toast.autovacuum_enabled = true)',
        "SET LOCAL synchronous_commit = on",  # it completes the import: on disk first
        f'DROP TABLE IF EXISTS "{TABLE}"',
    ]


def test_postgres_identifiers_are_quoted_not_pasted(pg):
    PostgresStore().drop('segment_x"; DROP TABLE auth_user; --')
    assert pg.executed == [('DROP TABLE IF EXISTS "segment_x""; DROP TABLE auth_user; --"', None)]


def test_postgres_copies_into_the_value_columns_with_no_nulls(pg):
    loader = PostgresStore().loader(TABLE, 2)
    assert isinstance(loader, CopyLoader)
    assert loader.copy_sql == (
        f'COPY "{TABLE}" ("c1", "c2") FROM STDIN (FORMAT csv, FORCE_NOT_NULL ("c1", "c2"))'
    )
    assert pg.executed == []  # composing runs nothing


def test_postgres_last_line_is_the_last_heap_page(pg):
    pg.output = [(41,)]
    assert PostgresStore().last_line(TABLE) == 41
    assert pg.executed == [
        ("SELECT pg_relation_size(%s) / current_setting('block_size')::int", [TABLE])
    ]


def export(store, **options) -> list[bytes]:
    written: list[bytes] = []
    defaults = {"columns": [2, 1], "after_line": 10, "up_to_line": 20, "timestamp": None}
    rows = store.export(TABLE, written.append, **{**defaults, "neutralise": (), **options})
    return rows, written


def test_postgres_exports_a_range_of_lines_raw(pg):
    pg.output, pg.rowcount = [b'"b","1"\n', b'"c","2"\n'], 2
    rows, written = export(PostgresStore())
    assert (rows, written) == (2, [b'"b","1"\n', b'"c","2"\n'])
    [(settings, _)] = pg.executed
    assert settings == (  # the pages of the range, plainly, whatever the statistics say
        "SET LOCAL enable_seqscan = off; SET LOCAL jit = off; "
        "SET LOCAL max_parallel_workers_per_gather = 0"
    )
    assert pg.copied == [
        (
            f'COPY (SELECT "c2", "c1" FROM "{TABLE}" WHERE ctid >= %s::tid AND ctid < %s::tid) '
            "TO STDOUT (FORMAT csv)",
            ["(10,0)", "(20,0)"],
        )
    ]


def test_postgres_neutralises_formula_cells_in_sql_where_asked(pg):
    export(PostgresStore(), columns=[3, 1], neutralise={3})
    [(query, parameters)] = pg.copied
    assert query == (
        f"COPY (SELECT CASE WHEN ascii(\"c3\") IN ({FORMULA_CODES}) THEN '''' || \"c3\" "
        f'ELSE "c3" END, "c1" FROM "{TABLE}" WHERE ctid >= %s::tid AND ctid < %s::tid) '
        "TO STDOUT (FORMAT csv)"
    )
    assert parameters == ["(10,0)", "(20,0)"]


def test_postgres_has_copy_quote_many_formula_columns_for_the_worker_to_neutralise(pg):
    many = MAX_NEUTRALISED_IN_SQL + 1  # columns 1 … many; the last column is left alone
    pg.output, pg.rowcount = [b'"=a","b",' + b'"-c",' * (many - 2) + b"=d\n"], 1
    columns = list(range(1, many + 2))
    rows, written = export(PostgresStore(), columns=columns, neutralise=set(columns[:-1]))
    [(query, _)] = pg.copied
    names = [f'"c{number}"' for number in columns]
    assert query == (
        f'COPY (SELECT {", ".join(names)} FROM "segment_0123abcd" '
        "WHERE ctid >= %s::tid AND ctid < %s::tid) "
        f"TO STDOUT (FORMAT csv, FORCE_QUOTE ({', '.join(names[:-1])}))"
    )
    assert (rows, written) == (1, [b'"\'=a","b",' + b'"\'-c",' * (many - 2) + b"=d\n"])


def test_postgres_filters_by_the_timestamp_column_as_timestamptz(pg):
    start, end = parse_timestamp("2024-01-01"), parse_timestamp("2024-01-02")
    export(PostgresStore(), columns=[1], timestamp=TimeFilter(1, start, end))
    [(query, parameters)] = pg.copied
    assert query == (
        f'COPY (SELECT "c1" FROM "{TABLE}" WHERE ctid >= %s::tid AND ctid < %s::tid '
        'AND "c2"::timestamptz >= %s::timestamptz AND "c2"::timestamptz < %s::timestamptz) '
        "TO STDOUT (FORMAT csv)"
    )
    assert parameters == [
        "(10,0)",
        "(20,0)",
        "2024-01-01T00:00:00+00:00",
        "2024-01-02T00:00:00+00:00",
    ]


@pytest.mark.parametrize(
    ("start", "end", "bounds"),
    [
        (FIRST_MOMENT, parse_timestamp("2024-01-02"), ["<"]),
        (parse_timestamp("2024-01-01"), LAST_MOMENT + 1, [">="]),
        (FIRST_MOMENT, LAST_MOMENT + 1, []),
    ],
)
def test_postgres_leaves_out_a_bound_past_what_a_date_time_holds(pg, start, end, bounds):
    export(PostgresStore(), columns=[1], timestamp=TimeFilter(0, start, end))
    [(query, parameters)] = pg.copied
    conditions = "".join(f' AND "c1"::timestamptz {op} %s::timestamptz' for op in bounds)
    assert query == (
        f'COPY (SELECT "c1" FROM "{TABLE}" WHERE ctid >= %s::tid AND ctid < %s::tid{conditions}) '
        "TO STDOUT (FORMAT csv)"
    )
    kept = [moment_iso(start)] if ">=" in bounds else []
    kept += [moment_iso(end)] if "<" in bounds else []
    assert parameters == ["(10,0)", "(20,0)", *kept]


@pytest.mark.parametrize(
    ("text", "alike"),
    [
        ('1,"a,b",c\r\n2,"say ""hi""",d\r\n', True),
        ("1,2\n\\.\n3,4\n", False),  # PostgreSQL's end-of-data line
        ("1,2\r\n\\.\r\n3,4\r\n", False),
        ("1,a\\.b\n\\.x\n", True),
    ],
)
def test_postgres_reads_alike_but_an_end_of_data_line(text, alike):
    assert reads_alike(text.encode()) is alike
    assert PostgresStore().takes_as_is(text.encode()) is alike


# SQLite


def test_sqlite_creates_and_drops_a_segment_keyed_by_its_line(lite):
    store = SqliteStore()
    store.create(TABLE, 2)
    store.drop(TABLE)
    assert lite.executed == [
        (
            f'CREATE TABLE IF NOT EXISTS "{TABLE}" '
            '(line integer primary key, "c1" text not null, "c2" text not null)',
            None,
        ),
        (f'DROP TABLE IF EXISTS "{TABLE}"', None),
    ]


def test_sqlite_inserts_values_as_parameters_and_leaves_the_line_to_sqlite(lite):
    loader = SqliteStore().loader(TABLE, 3)
    assert isinstance(loader, InsertLoader)
    assert loader.insert_sql == f'INSERT INTO "{TABLE}" ("c1", "c2", "c3") VALUES (?, ?, ?)'


@pytest.mark.parametrize("data", [b"1,\xc3\xa9\n", b"1,\xc3\n"])
def test_sqlite_takes_any_bytes_as_is_its_loader_finds_bad_utf8(data):
    assert SqliteStore().takes_as_is(data)


def test_sqlite_last_line_is_the_largest_rowid(lite):
    lite.output = [(7,)]
    assert SqliteStore().last_line(TABLE) == 7
    assert lite.executed == [(f'SELECT coalesce(max(line), 0) FROM "{TABLE}"', None)]


def test_sqlite_exports_by_its_timestamp_function_and_neutralises_in_python(lite):
    lite.output = [("=1+2", "1"), ("plain", "2")]
    start, end = parse_timestamp("2024-01-01"), parse_timestamp("2024-01-02")
    rows, written = export(SqliteStore(), timestamp=TimeFilter(1, start, end), neutralise={2, 1})
    assert lite.executed == [
        (
            f'SELECT "c2", "c1" FROM "{TABLE}" WHERE line > %s AND line <= %s '
            'AND collect_timestamp("c2") >= %s AND collect_timestamp("c2") < %s ORDER BY line',
            [10, 20, start, end],
        )
    ]
    assert (rows, written) == (2, [b'"\'=1+2","1"\n"plain","2"\n'])


def test_sqlite_exports_raw_cells_as_they_are(lite):
    lite.output = [("=1+2",)]
    rows, written = export(SqliteStore(), columns=[1])
    assert lite.executed == [
        (f'SELECT "c1" FROM "{TABLE}" WHERE line > %s AND line <= %s ORDER BY line', [10, 20])
    ]
    assert (rows, written) == (1, [b'"=1+2"\n'])


def test_sqlite_neutralises_only_the_columns_asked(lite):
    lite.output = [("=1+2", "=3")]
    rows, written = export(SqliteStore(), neutralise={1})  # columns [2, 1]: the second place
    assert (rows, written) == (1, [b'"=1+2","\'=3"\n'])
