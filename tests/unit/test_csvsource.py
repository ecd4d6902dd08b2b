"""The CSV reader of the import path: exact values, line numbers, rejects and resumability."""

import io
import random

import pytest

from collect.imports import csvsource
from collect.imports.csvsource import CsvSource, HeaderError, read_header
from tests.conftest import csv_bytes

NASTY = [
    ["id", "text", "note"],
    ["1", "comma, inside", 'quote "inside"'],
    ["2", "new\nline", "crlf\r\ninside"],
    ["3", "", "  spaces kept  "],
    ["4", "ünïcödé ✓ 日本", "=1+2"],
    ["5", '"', ","],
]


def read_all(data: bytes, *, timestamp_index=None, offset=None, line=None):
    header = read_header(io.BytesIO(data))
    source = CsvSource(
        io.BytesIO(data),
        offset=header.end_offset if offset is None else offset,
        line=header.lines if line is None else line,
        columns=header.columns,
        timestamp_index=timestamp_index,
        number_rows=True,
    )
    rows, rejects, checkpoints = [], [], []
    while (block := source.read_block()) is not None:
        rows += block.rows
        rejects += block.rejects
        checkpoints.append((source.offset, source.line, len(rows)))
    assert source.finished
    assert source.offset == len(data)
    return rows, rejects, checkpoints


@pytest.mark.parametrize("lineterminator", ["\r\n", "\n"])
def test_values_come_back_exactly_as_written(lineterminator):
    rows, rejects, _ = read_all(csv_bytes(NASTY, lineterminator=lineterminator))
    assert rejects == []
    assert [row[:3] for row in rows] == NASTY[1:]
    assert [row[3] for row in rows] == [2, 3, 6, 7, 8]  # the line where each record starts


def test_a_utf8_bom_is_not_part_of_the_first_column_name():
    header = read_header(io.BytesIO(b"\xef\xbb\xbfid,name\r\n1,x\r\n"))
    assert header.columns == ["id", "name"]
    assert header.end_offset == len(b"\xef\xbb\xbfid,name\r\n")


@pytest.mark.parametrize("block_bytes", [1, 2, 7, 64, 1 << 20])
def test_the_block_size_changes_nothing(monkeypatch, block_bytes):
    rng = random.Random(block_bytes)
    table = [["id", "text", "submitted_at"]]
    for number in range(300):
        text = "".join(rng.choice('ab,"\n\r é') for _ in range(rng.randrange(12)))
        table.append([str(number), text, f"2024-05-{1 + number % 28:02d}T10:00:00Z"])
    monkeypatch.setattr(csvsource, "BLOCK_BYTES", block_bytes)
    rows, rejects, _ = read_all(csv_bytes(table), timestamp_index=2)
    assert rejects == []
    assert [row[:3] for row in rows] == table[1:]


def test_reading_again_from_any_checkpoint_gives_the_remaining_rows(monkeypatch):
    monkeypatch.setattr(csvsource, "BLOCK_BYTES", 50)
    data = csv_bytes(NASTY * 20)  # repeated header rows are plain records here
    rows, _, checkpoints = read_all(data)
    for offset, line, rows_before in checkpoints:
        rest, _, _ = read_all(data, offset=offset, line=line)
        assert rows_before + len(rest) == len(rows)
        assert rest == rows[rows_before:]


def test_bad_records_are_rejected_with_their_line_and_reason():
    data = (
        b"a,b,c\n"
        b"1,2,3\n"
        b"4,5\n"
        b'6,"bad"quote,7\n'
        b"8,9\x00,10\n"
        b"\xff\xfe,11,12\n"
        b"\n"
        b"13,14,15\n"
        b'16,17,"never closed\n'
        b"18,19,20\n"
    )
    rows, rejects, _ = read_all(data)
    assert [row[:3] for row in rows] == [["1", "2", "3"], ["13", "14", "15"]]
    assert [(reject.line, reject.reason) for reject in rejects] == [
        (3, "expected 3 fields, found 2"),
        (4, "malformed CSV: ',' expected after '\"'"),
        (5, "contains a NUL character"),
        (6, "is not valid UTF-8"),
        (9, "unclosed quote: the file ends inside a quoted field"),
    ]


def test_a_row_with_a_bad_timestamp_is_rejected():
    data = b"id,submitted_at\n1,2024-01-01T00:00:00Z\n2,soon\n3,\n"
    rows, rejects, _ = read_all(data, timestamp_index=1)
    assert [row[:2] for row in rows] == [["1", "2024-01-01T00:00:00Z"]]
    assert [(r.line, r.reason) for r in rejects] == [
        (3, "column 'submitted_at' is not an ISO 8601 date-time: 'soon'"),
        (4, "column 'submitted_at' is not an ISO 8601 date-time: ''"),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"\n\n", "the file is empty"),
        (b"a,b,a\n1,2,3\n", "the header names column 'a' twice"),
        (b"a,,c\n", "the header has an empty column name"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "the header is not valid UTF-8"),
        (b"id,na\x00me\n", "the header contains a NUL character"),
        (b"caf\xe9,b\n", "the header is not valid UTF-8"),
        (b'"a,b\n', "the header is not valid CSV"),
    ],
)
def test_an_unusable_header_is_refused(data, message):
    with pytest.raises(HeaderError, match=message):
        read_header(io.BytesIO(data))


def source_after_header(data: bytes, *, timestamp_index: int | None = None) -> CsvSource:
    header = read_header(io.BytesIO(data))
    return CsvSource(
        io.BytesIO(data),
        offset=header.end_offset,
        line=header.lines,
        columns=header.columns,
        timestamp_index=timestamp_index,
    )


def test_answers_of_many_paragraphs_are_read_as_bytes_with_no_row_in_python(monkeypatch):
    """The end of a block's last record is found however many lines its answers span."""
    rng = random.Random(7)
    words = ["lorem", "ipsum,", '"quoted"', "ünï", "\n", "\n\n"]
    table = [["id", "story", "submitted_at"]]
    for number in range(400):
        story = " ".join(rng.choice(words) for _ in range(rng.randrange(100, 200)))
        table.append([str(number), story, f"2024-05-{1 + number % 28:02d}T10:00:00Z"])
    data = csv_bytes(table, lineterminator="\n")
    source = source_after_header(data, timestamp_index=2)
    first_data_byte = source.offset
    monkeypatch.setattr(source, "_parse", None)  # Python's reader must not be needed
    blocks = []
    while (block := source.read_block(max_bytes=64 << 10, raw_if=lambda _: True)) is not None:
        blocks.append(block)
    assert all(block.raw is not None for block in blocks)
    assert b"".join(block.raw for block in blocks) == data[first_data_byte:]
    assert sum(block.count for block in blocks) == 400
    assert source.line == data.count(b"\n")


@pytest.mark.parametrize(
    "tail",
    [b'16,17,"never closed\n18,19,20\n', b'16,17,"never closed\n18,19,20', b'16,"a\n\nb'],
)
def test_a_file_that_ends_inside_a_quoted_field_ends_on_the_fast_path_too(tail):
    source = source_after_header(b"a,b,c\n1,2,3\n" + tail)
    blocks = []
    for _ in range(10):  # it once gave empty blocks at the end for ever
        if (block := source.read_block(raw_if=lambda _: True)) is None:
            break
        blocks.append(block)
    assert source.finished
    assert sum(block.count for block in blocks) == 1
    rejects = [(reject.line, reject.reason) for block in blocks for reject in block.rejects]
    assert rejects == [(3, "unclosed quote: the file ends inside a quoted field")]


def test_a_rejected_record_is_shown_as_csv_so_that_its_fields_can_be_told_apart():
    data = b'id,submitted_at,city\n1,2024-03-05,"New York, NY",extra\n2,2024-02-30,"say ""hi"""\n'
    _, rejects, _ = read_all(data, timestamp_index=1)
    assert [reject.content for reject in rejects] == [
        '1,2024-03-05,"New York, NY",extra',
        '2,2024-02-30,"say ""hi"""',
    ]
