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

import functools
import re
from array import array
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from collect.datasets.cells import FORMULA_STARTS
from collect.timestamps import parse_timestamp

# The common forms of the timestamp rule (collect.timestamps), with its fields' ranges: what
# matches is a valid date-time as soon as its date is a day of the calendar.
COMMON_TIMESTAMP = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
    r"(Z|[+-](0[0-9]|1[0-5])(:?[0-5][0-9])?)?)?$"
)
_LF, _CR, _QUOTE = (pa.scalar(ord(byte), pa.uint8()) for byte in '\n\r"')
_BLANK_LINE = re.compile(rb"\n\r?\n")
_BEFORE_A_FIELD = (ord(","), ord("\n"))
_BEFORE_A_FIELD_SET = pa.array(_BEFORE_A_FIELD, pa.uint8())
_AFTER_A_FIELD_SET = pa.array([ord(","), ord("\r"), ord("\n")], pa.uint8())
_FORMULAS = pa.array(FORMULA_STARTS)
# A CR right after a comma or a line end ends a line (an empty cell); opening a quoted
# value it is the cell's own. A CR of its own ends a line too.
_BARE = "[" + re.escape("".join(start for start in FORMULA_STARTS if start != "\r")) + "]"
_FORMULA_START = f'(^|[,\\n\\r])("?{_BARE}|"\\r)'
_FORMULA_CLASS = "".join({"\t": r"\t", "\r": r"\r"}.get(c, re.escape(c)) for c in FORMULA_STARTS)
# COMMON_TIMESTAMP with only the days of the calendar: no year 0, no 31st of April, the 29th
# of February of leap years only.
_MONTH_DAY = (
    "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
)
_YEAR = "(?:[0-9]{3}[1-9]|[0-9]{2}[1-9]0|[0-9][1-9]00|[1-9]000)"
_LEAP_DAY = (
    "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)-02-29"
)
_TIMESTAMP = (
    f"(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_DAY})"
    r"(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-](?:0[0-9]|1[0-5])(?::?[0-5][0-9])?)?)?"
)
_TIMESTAMP_FIELD = f'(?:{_TIMESTAMP}|"{_TIMESTAMP}")'
_PARSE = pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False)
# The record pattern (`checked_by_pattern`) is compiled by every call, at a cost that grows
# with the width: past this many columns the general check is cheaper.
MAX_PATTERN_WIDTH = 64


@dataclass(frozen=True)
class Checked:
    count: int  # records
    lines: int  # lines they span
    first_day: str | None  # the least and greatest dates of their timestamps, as written
    last_day: str | None


def checked(records: bytes, *, width: int, timestamp_index: int | None) -> Checked | None:
    """Whether `records` (whole CSV records, ending with a line end) are all good, by the
    import's rules: `width` fields each, and a valid timestamp in that column."""
    lines = plain_lines(records)
    if lines is None:
        return None
    try:
        table = _read_strings(records, width, only=timestamp_index or 0)
    except pa.ArrowInvalid:  # a field count that is off, or bad UTF-8 in the column
        return None
    if timestamp_index is None:
        return Checked(table.num_rows, lines, None, None)
    days = _days_if_timestamps(table.column(0))
    if days is None:
        return None
    return Checked(table.num_rows, lines, *days)


def checked_by_pattern(
    records: bytes, *, width: int, timestamp_index: int | None, may_have_formulas: Collection[int]
) -> Checked | None:
    """`checked`, at about half its cost, for records that match `record_pattern`: their
    bytes are read by one RE2 pass and one column by pyarrow. None if they do not match;
    then no cell outside the `may_have_formulas` columns starts like a formula, either."""
    if width > MAX_PATTERN_WIDTH or b"\x00" in records:
        return None
    pattern = record_pattern(
        width,
        timestamp_index,
        frozenset(may_have_formulas),
        crlf=records.endswith(b"\r\n"),
        returns=b"\r" in records,
    )
    if not _matches(records, pattern):
        return None
    try:  # its field count is known now: one column gives the count and the days
        column = _read_strings(records, width, only=timestamp_index or 0).column(0)
    except pa.ArrowInvalid:  # bad UTF-8 in that column
        return None
    lines = records.count(b"\n")
    if timestamp_index is None:
        return Checked(len(column), lines, None, None)
    least_and_greatest = pc.min_max(pc.utf8_slice_codeunits(column, 0, 10)).as_py()
    return Checked(len(column), lines, least_and_greatest["min"], least_and_greatest["max"])


@functools.lru_cache(maxsize=64)
def record_pattern(
    width: int,
    timestamp_index: int | None,
    may_have_formulas: frozenset[int],
    *,
    crlf: bool,
    returns: bool,
) -> str:
    """A regex for whole records that every reader reads alike (see `plain_lines`), field by
    field: `width` fields, a valid timestamp in that column, no cell that starts like a
    formula but in the `may_have_formulas` columns; every record ends with CRLF if `crlf`,
    else with LF (COPY takes one line end only); with `returns` (of the bytes, else none), a
    CR inside a quoted value is the start of a CRLF (a CR of its own is a line end to
    Python, which would count the lines otherwise)."""
    fields = [
        _TIMESTAMP_FIELD
        if number == timestamp_index
        else _field(formula=number in may_have_formulas, returns=returns, may_be_empty=width > 1)
        for number in range(width)
    ]
    line_end = r"\r\n" if crlf else r"\n"
    return "^(?:" + ",".join(fields) + line_end + ")*$"


def _field(*, formula: bool, returns: bool, may_be_empty: bool) -> str:
    inside = r'(?:[^"\r]|""|\r\n)' if returns else r'(?:[^"]|"")'
    if formula:
        bare_first, quoted_first = r'[^",\r\n]', inside
    else:  # the value's first character is no formula's
        bare_first = rf'[^",\r\n{_FORMULA_CLASS}]'
        quoted_first = rf'(?:[^"{_FORMULA_CLASS}]|"")'
    bare = rf'{bare_first}[^",\r\n]*'
    if may_be_empty:  # with one column, an empty line is a blank line: no record to Python
        bare = f"(?:{bare})?"
    return f'(?:{bare}|"(?:{quoted_first}{inside}*)?")'


def _matches(records: bytes, pattern: str) -> bool:
    return bool(pc.match_substring_regex(_as_value(records), pattern)[0].as_py())


def plain_lines(records: bytes) -> int | None:
    """How many lines `records` span, if nothing in their bytes is read differently by
    different readers: no NUL, no CR of its own (a line end to Python, not to the count of
    LFs), no blank line (Python skips it, pyarrow makes a row of it; also refused when an
    empty line is inside a quoted value: Python then reads the block), and every quote
    opens or closes a whole field (see `quotes_make_fields`). Else None."""
    if b"\x00" in records or records.startswith((b"\n", b"\r")) or _BLANK_LINE.search(records):
        return None
    if b"\r" in records and _has_lone_return(_as_array(records)):
        return None
    if b'"' in records and not _quotes_make_fields(_as_array(records)):
        return None
    return records.count(b"\n")


def quotes_make_fields(records: bytes) -> bool:
    """Whether every quote opens or closes a whole field (or is a doubled one inside it):
    `a"b` and `"a"b` are an error or a value, depending on the reader."""
    return b'"' not in records or _quotes_make_fields(_as_array(records))


def may_start_a_formula(records: bytes) -> bool:
    """Whether some cell of `records` may start like a formula (see datasets.cells), found
    from the bytes by RE2: a formula's first character right after a comma or a line end,
    or after one and a quote. Also true of such bytes inside a quoted value: only a bound."""
    return _matches(records, _FORMULA_START)


def formula_columns(records: bytes, width: int) -> frozenset[int]:
    """The columns (0-based) with a cell that starts like a formula, of whole records;
    all of them if pyarrow cannot read the records."""
    if not may_start_a_formula(records):
        return frozenset()
    try:
        table = _read_strings(records, width)
    except pa.ArrowInvalid:
        return frozenset(range(width))
    return frozenset(
        number
        for number, column in enumerate(table.columns)
        if pc.any(pc.is_in(pc.utf8_slice_codeunits(column, 0, 1), value_set=_FORMULAS)).as_py()
    )


def _read_strings(records: bytes, width: int, only: int | None = None) -> pa.Table:
    """The records' columns (or only the `only`th) as strings, as written."""
    names = [str(number) for number in range(width)]
    return pacsv.read_csv(
        pa.BufferReader(pa.py_buffer(records)),
        read_options=pacsv.ReadOptions(
            column_names=names, use_threads=False, block_size=len(records) + 1
        ),
        parse_options=_PARSE,
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            include_columns=names if only is None else [names[only]],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def record_end(data: bytes) -> int:
    """Just past the last line end of `data` that ends a record (no quoted field open
    there); 0 if there is none. Quotes inside a quoted field are doubled, so an even count
    of them before a line end means that no field is open. Going back a line at a time
    counts each byte once: an answer of many short lines (paragraphs) may hold dozens."""
    end = data.rfind(b"\n") + 1
    if not end:
        return 0
    quotes = data.count(b'"', 0, end)
    while quotes % 2:
        before = data.rfind(b"\n", 0, end - 1) + 1
        if not before:
            return 0
        quotes -= data.count(b'"', before, end)
        end = before
    return end


def _days_if_timestamps(values: pa.ChunkedArray) -> tuple[str, str] | None:
    """The least and greatest dates of `values`, if each is a valid timestamp."""
    common = pc.match_substring_regex(values, COMMON_TIMESTAMP)
    if not _all(common):  # the rare other forms: Python's rule decides each
        for value in pc.filter(values, pc.invert(common)).to_pylist():
            try:
                parse_timestamp(value)
            except ValueError:
                return None
    days = pc.utf8_slice_codeunits(values, 0, 10)
    for day in pc.unique(days).to_pylist():
        try:
            date.fromisoformat(day)  # a day of the calendar: no 31st of April
        except ValueError:
            return None
    least_and_greatest = pc.min_max(days).as_py()
    return least_and_greatest["min"], least_and_greatest["max"]


def _all(mask: pa.Array | pa.ChunkedArray) -> bool:
    return bool(pc.all(mask, min_count=0).as_py())  # of nothing: true


def _has_lone_return(data: pa.UInt8Array) -> bool:
    returns, line_feeds = pc.equal(data, _CR), pc.equal(data, _LF)
    followed = pc.and_(returns.slice(0, len(data) - 1), line_feeds.slice(1))
    return pc.sum(returns).as_py() != pc.sum(followed).as_py()


def _as_array(records: bytes) -> pa.UInt8Array:
    return pa.Array.from_buffers(pa.uint8(), len(records), [None, pa.py_buffer(records)])


def _as_value(records: bytes) -> pa.BinaryArray:
    """`records` as an array of one value, on their own bytes (pa.array copies them)."""
    offsets = pa.py_buffer(array("i", [0, len(records)]))
    return pa.Array.from_buffers(pa.binary(), 1, [None, offsets, pa.py_buffer(records)])


def _quotes_make_fields(data: pa.UInt8Array) -> bool:
    """Inside a quoted field a quote is doubled, so taken in order the quotes are: an
    opening one (even place), pairs of neighbours (odd, even), a closing one (odd). A quote
    at an odd place with a neighbour next is the first of a pair, else closing; one at an
    even place right after the one before is the second of a pair, else opening."""
    quotes = pc.indices_nonzero(pc.equal(data, _QUOTE))
    count = len(quotes)
    if count % 2:
        return False
    odd, even = quotes[1::2], quotes[0::2]
    # Whether the quote at odd place 2k + 1 (but the last) has a neighbour next: a pair.
    pairs = pc.equal(even[1:], pc.add(odd[: count // 2 - 1], 1))
    closing = pa.concat_arrays([pc.filter(odd[:-1], pc.invert(pairs)), odd[-1:]])
    opening = pc.filter(even[1:], pc.invert(pairs))
    if even[0].as_py() and data[even[0].as_py() - 1].as_py() not in _BEFORE_A_FIELD:
        return False
    before = pc.take(data, pc.subtract(opening, 1))
    if not _all(pc.is_in(before, value_set=_BEFORE_A_FIELD_SET)):
        return False
    if closing[-1].as_py() == len(data) - 1:
        closing = closing[:-1]
    after = pc.take(data, pc.add(closing, 1))
    return _all(pc.is_in(after, value_set=_AFTER_A_FIELD_SET))
