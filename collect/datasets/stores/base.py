"""The segment store interface: where the records of a dataset live, one table per import.

A segment is the values as text, exactly as written, in `c1..cN`, in the order of its file;
each row has a "line", a position in that order that the store chooses (SQLite's is the
rowid, PostgreSQL's the heap page, which many rows share). An import becomes visible
all at once when its job completes, and rolling one back is a DROP TABLE, however many rows
it wrote. Each database has a store of its own
(`postgres.PostgresStore`, `sqlite.SqliteStore`), chosen once by COLLECT_SEGMENT_STORE;
everything that is one database's own lives in its store and nowhere else.
"""

from collections.abc import Callable, Collection, Iterable
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from django.db.backends.base.base import BaseDatabaseWrapper


class RecordBlock(Protocol):
    """Records the import has checked, in file order (imports.csvsource.Block is one)."""

    rows: list[list[Any]]  # the values
    raw: bytes | None  # the block's CSV bytes, when `takes_as_is` accepted them
    count: int  # how many records, whether or not `rows` holds them
    line_end: str  # how the file's lines end there ("\n", "\r\n" or "\r")


# A batch's blocks from its start: raw bytes allowed (True) or not. Called again after the
# store refused a batch's bytes, it reads the same records again.
Batch = Callable[[bool], Iterable[RecordBlock]]


class TimeFilter(NamedTuple):
    """Rows whose value in `column` (0-based) is a timestamp in [start, end) µs."""

    column: int
    start: int
    end: int


class RecordTooBig(Exception):
    """A record the database cannot hold, whatever is tried again: the input's fault."""


class SegmentLoader(Protocol):
    def load(self, batch: Batch) -> None:
        """Append a batch's records to the segment, in the current transaction."""


class SegmentStore:
    """Every operation runs on Django's connection, in the caller's transaction."""

    vendor = ""  # the Django database vendor it works with

    def takes_as_is(self, data: bytes) -> bool:
        """Whether a loader may take these bytes of whole, checked records as they are,
        parsing them itself into the same values. Each of their quotes opens or closes a
        whole field: the import has made sure (a bare quote is data to some readers and
        starts a quoted value to others)."""
        return False

    def max_width(self) -> int:
        """The most value columns a segment can have."""
        raise NotImplementedError

    def create(self, table: str, width: int) -> None:
        """Make the segment, if it does not exist yet (a run resumed after a crash)."""
        raise NotImplementedError

    def loader(self, table: str, width: int) -> SegmentLoader:
        raise NotImplementedError

    def seal(self, table: str) -> None:
        """Make a completed segment ready for exports."""

    def drop(self, table: str) -> None:
        raise NotImplementedError

    def last_line(self, table: str) -> int:
        """A bound on the segment's lines, cheap whatever its size: every line is at most it."""
        raise NotImplementedError

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
        """Write the rows with `after_line < line <= up_to_line` (and in `timestamp`'s span)
        as CSV with LF line ends, values of the 1-based `columns` only; returns how many.
        In the `neutralise` columns (1-based, of `columns`), cells that a spreadsheet would
        run as a formula get a leading quote."""
        raise NotImplementedError

    def connection_created(self, connection: BaseDatabaseWrapper) -> None:
        """Called for every new database connection (SQL functions the store needs)."""


def segment_table(job_id: UUID) -> str:
    """The table of an import job's segment."""
    return f"segment_{job_id.hex}"


def value_columns(width: int) -> list[str]:
    return [f"c{number}" for number in range(1, width + 1)]
