"""The import's common case checked in C++: a block whose bytes a store takes as they are
(PostgreSQL's COPY) needs no row in Python, only the proof that the rows are good, and
pyarrow's CSV parser and compute functions give it at a fraction of `csv.reader`'s cost.

`checked` answers for a block of whole records either "all good" (with their count, lines
and dates) or "don't know" (None), never "bad": anything unusual (a field count that is off,
a blank line, a field that goes on after its closing quote, a timestamp outside the common
forms that Python's rule then refuses) sends the block to the Python reader, which finds
each rejected row with its line and reason. What this passes, Python's reader passes too;
the database then checks what both leave to it (UTF-8), and a block it refuses is redone.
"""

import io
import re
from dataclasses import dataclass
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from collect.timestamps import parse_timestamp

# The common forms of the timestamp rule (collect.timestamps), with its fields' ranges: what
# matches is a valid date-time as soon as its date is a day of the calendar.
COMMON_TIMESTAMP = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
    r"(Z|[+-](0[0-9]|1[0-5])(:?[0-5][0-9])?)?)?$"
)
_QUOTED_FIELD = re.compile(rb'"[^"]*(?:""[^"]*)*"')
_PARSE = pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False)


@dataclass(frozen=True)
class Checked:
    count: int  # records
    lines: int  # lines they span
    first_day: str | None  # the least and greatest dates of their timestamps, as written
    last_day: str | None


def checked(records: bytes, *, width: int, timestamp_index: int | None) -> Checked | None:
    """Whether `records` (whole CSV records, ending with a line end) are all good, by the
    import's rules: `width` fields each, and a valid timestamp in that column."""
    if b"\x00" in records or _has_blank_line(records) or not _quotes_make_fields(records):
        return None
    lines = records.count(b"\n")
    if records.count(b"\r") != records.count(b"\r\n"):
        return None  # a CR of its own ends a line to Python: so rare, Python reads those
    names = [str(number) for number in range(width)]
    try:
        table = pacsv.read_csv(
            io.BytesIO(records),
            read_options=pacsv.ReadOptions(
                column_names=names, use_threads=False, block_size=len(records) + 1
            ),
            parse_options=_PARSE,
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                include_columns=[names[timestamp_index or 0]],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:  # a field count that is off, or bad UTF-8 in the column
        return None
    if timestamp_index is None:
        return Checked(table.num_rows, lines, None, None)
    values = table.column(0)
    if not _all_timestamps(values):
        return None
    days = pc.min_max(pc.utf8_slice_codeunits(values, 0, 10)).as_py()
    return Checked(table.num_rows, lines, days["min"], days["max"])


def record_end(data: bytes) -> int:
    """Just past the last line end of `data` that ends a record (no quoted field open
    there); 0 if none is found among the last few. Quotes inside a quoted field are doubled,
    so an even count of them before a line end means that no field is open."""
    end = data.rfind(b"\n") + 1
    for _ in range(8):
        if not end:
            return 0
        if data.count(b'"', 0, end) % 2 == 0:
            return end
        end = data.rfind(b"\n", 0, end - 1) + 1
    return 0


def _all_timestamps(values: pa.ChunkedArray) -> bool:
    common = pc.match_substring_regex(values, COMMON_TIMESTAMP)
    if not pc.all(common).as_py():  # the rare other forms: Python's rule decides each
        for value in pc.filter(values, pc.invert(common)).to_pylist():
            try:
                parse_timestamp(value)
            except ValueError:
                return False
    for day in pc.unique(pc.utf8_slice_codeunits(values, 0, 10)).to_pylist():
        try:
            date.fromisoformat(day)  # a day of the calendar: no 31st of April
        except ValueError:
            return False
    return True


def _has_blank_line(records: bytes) -> bool:
    # Also true of an empty line inside a quoted value: then Python reads the block.
    return records.startswith((b"\n", b"\r")) or b"\n\n" in records or b"\n\r\n" in records


def _quotes_make_fields(records: bytes) -> bool:
    """Whether every quote opens or closes a whole field (or is a doubled one inside it):
    `a"b` and `"a"b` are an error or a value, depending on the reader."""
    if records.count(b'"') % 2:
        return False
    for quoted in _QUOTED_FIELD.finditer(records):
        start, end = quoted.start(), quoted.end()
        if start and records[start - 1 : start] not in (b",", b"\n"):
            return False
        if records[end : end + 1] not in (b",", b"\r", b"\n", b""):
            return False
    return True
