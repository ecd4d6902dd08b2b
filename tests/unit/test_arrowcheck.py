"""pyarrow's check of a block (collect/imports/arrowcheck.py) never passes what Python's
reader would reject: for timestamps against the rule itself, for whole blocks against
CsvSource's own reading of them, on generated CSV near every edge it knows."""

import csv
import io
import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from collect.datasets.cells import FORMULA_STARTS
from collect.imports.arrowcheck import (
    COMMON_TIMESTAMP,
    checked,
    checked_by_pattern,
    formula_columns,
    may_start_a_formula,
    quotes_make_fields,
    record_end,
)
from collect.imports.csvsource import CsvSource
from collect.timestamps import ISO_TIMESTAMP, parse_timestamp

_NEAR_TIMESTAMPS = st.one_of(
    st.from_regex(ISO_TIMESTAMP, fullmatch=True),
    st.from_regex(COMMON_TIMESTAMP.strip("^$"), fullmatch=True),
    st.text(alphabet="0123456789-:T Z+.", max_size=32),
)


def is_timestamp(text: str) -> bool:
    try:
        parse_timestamp(text)
    except ValueError:
        return False
    return True


@given(_NEAR_TIMESTAMPS)
@example("2024-02-30")  # the form, not a day: the day is checked apart
@example("2024-12-31T23:59:59.999999+15:59")
@example("0000-01-01")
def test_what_the_common_form_takes_the_rule_takes_once_its_day_is_real(text):
    if re.fullmatch(COMMON_TIMESTAMP.strip("^$"), text) and is_timestamp(text[:10]):
        assert is_timestamp(text)


def python_reading(data: bytes, width: int, timestamp_index: int | None):
    """(records, rejects, lines) as CsvSource reads them, or None if it stops short."""
    source = CsvSource(
        io.BytesIO(data), offset=0, line=0, columns=[str(n) for n in range(width)],
        timestamp_index=timestamp_index,
    )  # fmt: skip
    block = source.read_block(max_bytes=len(data) + 1)
    if block is None or source.offset != len(data):
        return None
    return len(block.rows), len(block.rejects) + block.has_blank_lines, source.line


_CELLS = st.one_of(
    st.sampled_from(["", "x", "2024-03-01", "2024-03-01T10:00:00Z", "2024-02-30", "a,b",
                     'say "hi"', "two\nlines", "cr\r\nlf", "Zürich", "\\.", "x\x00y", " "]),
    st.text(alphabet='ab,"\r\n\\.0123456789-:TZ ', max_size=8),
)  # fmt: skip


@st.composite
def csv_blocks(draw):
    width = draw(st.integers(1, 4))
    rows = draw(st.lists(st.lists(_CELLS, min_size=width, max_size=width), min_size=1))
    text = io.StringIO()
    line_end = draw(st.sampled_from(["\n", "\r\n"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    csv.writer(text, lineterminator=line_end, quoting=quoting).writerows(rows)
    data = text.getvalue()
    if draw(st.booleans()):  # and then broken somewhere
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from(['"', ",", "\n", "x", "\n\n"])) + data[at:]
    timestamp_index = draw(st.one_of(st.none(), st.integers(0, width - 1)))
    return data.encode(), width, timestamp_index


@given(csv_blocks())
@example(
    (b'1,"x"y\n', 2, None),
)
@example((b"1,2\n\n3,4\n", 2, None))
@example((b"2024-02-30,a\n", 2, 0))
def test_a_block_pyarrow_passes_python_passes_too(block):
    data, width, timestamp_index = block
    used = record_end(data)
    if not used:
        return
    data = data[:used]
    found = checked(data, width=width, timestamp_index=timestamp_index)
    if found is None:
        return  # Python reads it, whatever it holds
    reading = python_reading(data, width, timestamp_index)
    assert reading == (found.count, 0, found.lines), (data, found)


@given(csv_blocks(), st.sets(st.integers(0, 3)))
@example((b'1,"x"y\n', 2, None), set())
@example((b"1,2\n\n3,4\n", 2, None), set())
@example((b"x\n\ny\n", 1, None), set())
@example((b"2024-02-29,a\n2023-02-29,b\n", 2, 0), set())
@example((b"0000-01-01,a\n", 2, 0), set())
@example((b'1,"a\rb"\r\n', 2, None), set())
@example((b'1,"a\r\nb"\r\n2,"\n"\r\n', 2, None), set())
@example((b"1,2\r\n3,4\n", 2, None), set())
@example((b'1,"a\r\nb"\n2,"c\r"\n', 2, None), set())
@example((b'-1,"=x"\n', 2, None), {0})
def test_a_block_the_record_pattern_passes_python_passes_too(block, may_have_formulas):
    """And no cell of a column outside `may_have_formulas` starts like a formula."""
    data, width, timestamp_index = block
    used = record_end(data)
    if not used:
        return
    data = data[:used]
    found = checked_by_pattern(
        data, width=width, timestamp_index=timestamp_index, may_have_formulas=may_have_formulas
    )
    if found is None:
        return  # the general check decides
    reading = python_reading(data, width, timestamp_index)
    assert reading == (found.count, 0, found.lines), (data, found)
    rows = list(csv.reader(io.StringIO(data.decode(), newline=""), strict=True))
    assert {
        number for row in rows for number, cell in enumerate(row) if cell.startswith(FORMULA_STARTS)
    } <= may_have_formulas, data
    if timestamp_index is not None:
        days = sorted(row[timestamp_index][:10] for row in rows)
        assert (found.first_day, found.last_day) == (days[0], days[-1])


def whole_fields_by_regex(records: bytes) -> bool:
    """The quote rule, one quoted field at a time: the reference for the vectorized one."""
    if records.count(b'"') % 2:
        return False
    for quoted in re.finditer(rb'"[^"]*(?:""[^"]*)*"', records):
        start, end = quoted.start(), quoted.end()
        if start and records[start - 1 : start] not in (b",", b"\n"):
            return False
        if records[end : end + 1] not in (b",", b"\r", b"\n", b""):
            return False
    return True


@pytest.mark.parametrize(
    ("text", "whole"),
    [
        ('1,"a,b",c\r\n2,"say ""hi""",d\r\n', True),
        ('1,"",""\n', True),
        ('"""",""""""\n', True),
        ('"a""",b\n', True),
        ('1,ab"c,d\n', False),  # Python keeps the quote; PostgreSQL would start quoting
        ('1,ab"c\n2,"x"\n3,"y"\n', False),
        ('1,"x"\n2,ab"c\n', False),
        ('1,"x"y\n', False),
        ('1,a""b\n', False),
        ('1,"x"\r"y"\n', False),  # after a CR of its own
        ("no quotes\n", True),
    ],
)
def test_quotes_make_fields(text, whole):
    assert quotes_make_fields(text.encode()) is whole
    assert whole_fields_by_regex(text.encode()) is whole


@given(st.text(alphabet='a,"\r\n', max_size=40))
def test_the_vectorized_quote_rule_is_the_regex_one(text):
    data = text.encode()
    assert quotes_make_fields(data) is whole_fields_by_regex(data)


@given(csv_blocks())
@example((b'1,"\rx"\r\n', 2, None))
@example((b'\tx,"=y"\n', 2, None))
@example((b'",,,\n"\n\r-",,,\n', 4, None))  # after a CR of its own, a line starts
def test_every_column_with_a_cell_like_a_formula_is_found(block):
    data, width, _ = block
    try:
        rows = list(csv.reader(io.StringIO(data.decode(), newline=""), strict=True))
    except (csv.Error, UnicodeDecodeError):
        return  # Python reads such a block row by row: with the rows, it is exact
    columns = {
        number
        for row in rows
        if len(row) == width
        for number, cell in enumerate(row)
        if cell.startswith(FORMULA_STARTS)
    }
    assert may_start_a_formula(data) or not columns
    assert columns <= formula_columns(data, width)


def _last_record_end(data: bytes) -> int:
    """record_end the slow way: the last line end with an even count of quotes before it."""
    ends = [at + 1 for at, byte in enumerate(data) if byte == ord("\n")]
    return max((end for end in ends if data.count(b'"', 0, end) % 2 == 0), default=0)


@given(st.lists(st.sampled_from([b'"', b'""', b"\n", b"\n\n", b"x", b","]), max_size=80))
@example([b"x", b"\n", b'"', *[b"\n", b"x"] * 40])  # a last answer of 40 lines, still open
def test_record_end_finds_the_last_line_end_outside_quotes(pieces):
    data = b"".join(pieces)
    assert record_end(data) == _last_record_end(data)
