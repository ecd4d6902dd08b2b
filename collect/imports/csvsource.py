"""Reading an uploaded CSV file as a stream of parsed blocks, resumable at any block boundary.

This is the import's hot path, so the common case stays inside C code. For a store that can
take a block's bytes as they are (`raw_if`: PostgreSQL's COPY), a block of 1 MiB is checked
with no row in Python (collect/imports/arrowcheck.py), and one that fails is halved down to
64 KiB around the trouble. Else a block of 256 KiB is decoded in one call and parsed by one
`csv.reader`; per row Python only checks the field count and, when there is one, parses the
timestamp. Rare trouble (bad UTF-8, NUL, broken quoting) sends only its own block down a
slower, row-by-row path, which finds each rejected row's line and reason. It knows no
database.

A block always ends at a record boundary, so `(offset, line)` after any block is a checkpoint
from which a new reader continues with no row read twice and none skipped.
"""

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from collect.datasets.cells import FORMULA_STARTS
from collect.imports import arrowcheck
from collect.timestamps import iso_shaped

if TYPE_CHECKING:
    from _csv import Reader  # what csv.reader() returns

BLOCK_BYTES = 1 << 18  # 256 KiB: ~1,000 rows; smaller blocks start COPY sooner in a batch
# Checked by pyarrow: each call has a fixed cost, so larger blocks; one that fails is halved
# down to this, so that Python reads only the records near the trouble, and the blocks after
# it start that small again, doubling with each that passes: trouble often comes in runs.
CHECK_BYTES, MIN_CHECK_BYTES = 1 << 20, 1 << 16
PENDING_READ_BYTES = 1 << 12  # read at least this much past what is pending
MAX_FIELD_CHARS = 1 << 20
MAX_HEADER_BYTES = 1 << 20
PREVIEW_CHARS = 200

csv.field_size_limit(MAX_FIELD_CHARS)


class Reject(NamedTuple):
    line: int
    reason: str
    content: str


@dataclass
class Header:
    columns: list[str]
    end_offset: int  # the first data byte
    lines: int  # lines the header spans (1 unless a name holds a newline)


@dataclass
class Block:
    # Each row: its values; a numbered row adds the file line it starts on.
    rows: list[list[Any]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    # The block's bytes, when asked for (`raw_if`) and they are exactly its good records.
    raw: bytes | None = None
    count: int = 0  # good records, whether or not `rows` holds them
    has_blank_lines: bool = False
    line_end: str = "\n"  # how its last line ends: "\n", "\r\n" or "\r"
    # The first and last dates (YYYY-MM-DD, as written) of its records' timestamps.
    first_day: str | None = None
    last_day: str | None = None
    # The columns (0-based) where a cell may start like a formula (datasets.cells).
    formula_columns: frozenset[int] = frozenset()


class HeaderError(ValueError):
    pass


def read_header(stream: io.BufferedIOBase) -> Header:
    """The first record of the file: the column names, exactly as written."""
    head = stream.read(MAX_HEADER_BYTES)
    if not head.strip():
        raise HeaderError("the file is empty")
    bom = len(b"\xef\xbb\xbf") if head.startswith(b"\xef\xbb\xbf") else 0
    cut = last_line_end(head) if len(head) == MAX_HEADER_BYTES else len(head)
    text = head[bom:cut].decode("utf-8", "surrogateescape")  # rows below may be bad; not ours
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        columns = next(reader)
    except (csv.Error, StopIteration) as error:
        raise HeaderError(f"the header is not valid CSV: {error}") from None
    if reason := _dirty_reason(columns):
        raise HeaderError(f"the header {reason}: is this a UTF-8 CSV file?")
    _check_names(columns)
    lines = reader.line_num
    header_text = "".join(io.StringIO(text, newline="").readlines()[:lines])
    return Header(columns, bom + len(header_text.encode("utf-8")), lines)


def _check_names(columns: list[str]) -> None:
    if not columns or any(not name.strip() for name in columns):
        raise HeaderError("the header has an empty column name")
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise HeaderError(f"the header names column {name!r} twice")
        seen.add(name)


def last_line_end(data: bytes) -> int:
    """Just past the last line break; 0 if there is none. A CR at the very end may be the
    first half of a CRLF, so it only counts once the next byte is known."""
    return data.rfind(b"\n") + 1 or data.rfind(b"\r", 0, len(data) - 1) + 1


class CsvSource:
    """Parses data records from `offset` (just after line `line`) on, a block at a time."""

    def __init__(
        self,
        stream: io.BufferedIOBase,
        *,
        offset: int,
        line: int,
        columns: list[str],
        timestamp_index: int | None,
        number_rows: bool = False,
        formula_columns: Iterable[int] = (),
    ) -> None:
        self.stream = stream
        self.columns = columns
        self.width = len(columns)
        self.timestamp_index = timestamp_index
        self.number_rows = number_rows  # each row ends with the file line it starts on
        # The columns where a cell read so far may start like a formula (a bound).
        self.formula_columns = set(formula_columns)
        self.rewind(offset, line)

    def rewind(self, offset: int, line: int) -> None:
        """Continue from a checkpoint again."""
        self.stream.seek(offset)
        self.offset = offset
        self.line = line
        self.pending = b""
        self.exhausted = False
        self.trouble_end = 0  # where the records of the last check that failed end
        self.check_bytes = CHECK_BYTES

    @property
    def finished(self) -> bool:
        return self.exhausted and not self.pending

    def read_block(
        self, max_bytes: int = BLOCK_BYTES, raw_if: Callable[[bytes], bool] | None = None
    ) -> Block | None:
        """The next block of parsed records, or None at the end of the file. A block holds
        the records of about `max_bytes` of the file (at least one whole record). Given
        `raw_if`, a block whose bytes are just its good records and that `raw_if(bytes)`
        accepts comes as those bytes (`raw`), without its rows."""
        data, at_end = self._next_chunk(
            min(max_bytes, BLOCK_BYTES if raw_if is None else self.check_bytes)
        )
        if not data:
            return None
        if raw_if is not None:
            block, data = self._checked_as_is(data, raw_if)
            if block is not None:
                return block
            at_end = at_end and not self.pending
        text, clean = _decode(data)
        # When the bytes may be taken as they are, a first pass only checks the records:
        # keeping a list per row costs more than parsing them again in the rare block that
        # turns out to need its rows after all.
        only_check = raw_if is not None and clean
        block = Block()
        lines, complete = self._parse(text, clean, at_end, block, keep_rows=not only_check)
        if only_check and (block.rejects or block.has_blank_lines or not _taken(data, raw_if)):
            block = Block()
            lines, complete = self._parse(text, clean, at_end, block, keep_rows=True)
            only_check = False
        if complete:  # the usual case: the chunk ended with a record
            used = len(data)
        else:  # a record runs on into the next chunk: read its lines again with that chunk
            used = len(
                "".join(io.StringIO(text, newline="").readlines()[:lines]).encode(
                    "utf-8", "surrogateescape"
                )
            )
            self.pending = data[used:] + self.pending
        if only_check:
            block.raw = data[:used]
        block.formula_columns = self._formula_columns(
            data[:used], None if only_check else block.rows
        )
        self.formula_columns |= block.formula_columns
        block.line_end = _line_end(data[:used])
        self.offset += used
        self.line += lines
        return block

    def _checked_as_is(
        self, data: bytes, raw_if: Callable[[bytes], bool]
    ) -> tuple[Block | None, bytes]:
        """The first records of `data` as their bytes, if they pass `raw_if` and pyarrow finds
        them all good (see collect/imports/arrowcheck.py): all of them, else the first half,
        and so on. Else no block, and the first records for Python to read instead. What is
        not used goes back to be read next."""
        # Past a check that failed, the next starts with the records it failed on.
        trouble = self.trouble_end - self.offset
        records = data[:trouble] if trouble > 0 else data
        while used := arrowcheck.record_end(records):
            records = records[:used]
            if good := self._all_good(records, raw_if):
                found, formula_columns = good
                self.check_bytes = min(CHECK_BYTES, 2 * self.check_bytes)
                self.pending = data[used:] + self.pending
                self.offset += used
                self.line += found.lines
                self.formula_columns |= formula_columns
                return Block(
                    raw=records,
                    count=found.count,
                    line_end=_line_end(records),
                    first_day=found.first_day,
                    last_day=found.last_day,
                    formula_columns=formula_columns,
                ), b""
            self.trouble_end = self.offset + used
            self.check_bytes = MIN_CHECK_BYTES
            if used <= MIN_CHECK_BYTES:
                break
            records = records[: used // 2]
        cut = last_line_end(records) or len(data)
        if self.exhausted and not self.pending and not arrowcheck.record_end(data[:cut]):
            # No whole record before the cut, at the file's end: Python gets all that is left
            # and reports the field left open. Put back, it would come again for ever.
            cut = len(data)
        self.pending = data[cut:] + self.pending
        return None, data[:cut]

    def _all_good(
        self, records: bytes, raw_if: Callable[[bytes], bool]
    ) -> tuple[arrowcheck.Checked, frozenset[int]] | None:
        """Their check, and the columns where a cell of theirs may start like a formula
        (those known before aside); None if they are not all good or not known to be."""
        # No field of so few bytes is over the limit, which Python's reader enforces.
        if len(records) > MAX_FIELD_CHARS or not raw_if(records):
            return None
        width, timestamp_index = self.width, self.timestamp_index
        if width > arrowcheck.MAX_PATTERN_WIDTH:
            found = arrowcheck.checked(records, width=width, timestamp_index=timestamp_index)
            return self._with_formula_columns(found, records)
        found = arrowcheck.checked_by_pattern(
            records,
            width=width,
            timestamp_index=timestamp_index,
            may_have_formulas=self.formula_columns,
        )
        if found is not None:  # the common case: nothing new in these records
            return found, frozenset()
        if len(self.formula_columns) == width:
            return None
        # Else a cell may start like a formula in a column where none did before.
        found = arrowcheck.checked_by_pattern(
            records, width=width, timestamp_index=timestamp_index, may_have_formulas=range(width)
        )
        return self._with_formula_columns(found, records)

    def _with_formula_columns(
        self, found: arrowcheck.Checked | None, records: bytes
    ) -> tuple[arrowcheck.Checked, frozenset[int]] | None:
        return None if found is None else (found, arrowcheck.formula_columns(records, self.width))

    def _formula_columns(self, records: bytes, rows: list[list[Any]] | None) -> frozenset[int]:
        """Of the block's records (`rows`, if parsed), the columns where a cell starts like
        a formula: a bound, since rejected records count too."""
        if rows is None:
            return arrowcheck.formula_columns(records, self.width)
        if not arrowcheck.may_start_a_formula(records):
            return frozenset()
        return frozenset(
            number
            for number in range(self.width)
            if any(row[number].startswith(FORMULA_STARTS) for row in rows)
        )

    def _next_chunk(self, size: int) -> tuple[bytes, bool]:
        """Bytes up to the last line break read so far, about `size` of them with what is
        pending, and whether the file ends there."""
        while True:
            # Bytes put back (a block that used fewer) count, or they would pile up.
            chunk = self.stream.read(max(size - len(self.pending), PENDING_READ_BYTES))
            if not chunk:
                self.exhausted = True
                data, self.pending = self.pending, b""
                return data, True
            data = self.pending + chunk
            cut = last_line_end(data)
            if cut:
                self.pending = data[cut:]
                return data[:cut], False
            self.pending = data
            if len(data) > MAX_FIELD_CHARS * 4:
                return data, False  # one huge line: let the parser reject it

    def _parse(
        self, text: str, clean: bool, at_end: bool, block: Block, keep_rows: bool
    ) -> tuple[int, bool]:
        """Parse `text` into `block`. Returns how many of its lines were used, and whether
        that is all of them (else the last record goes on past the end of `text`)."""
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        progress = _LinesDone()
        while True:
            try:
                self._parse_rows(reader, progress, clean, block, keep_rows)
                return progress.lines, True
            except csv.Error as error:
                start = self.line + progress.lines + 1
                if "unexpected end of data" not in str(error):
                    block.rejects.append(Reject(start, f"malformed CSV: {error}", ""))
                    progress.lines = reader.line_num
                elif not at_end:
                    return progress.lines, False  # a quoted field goes on in the next chunk
                else:
                    reason = "unclosed quote: the file ends inside a quoted field"
                    block.rejects.append(Reject(start, reason, ""))
                    return reader.line_num, True

    def _parse_rows(
        self, reader: "Reader", progress: "_LinesDone", clean: bool, block: Block, keep_rows: bool
    ) -> None:
        rows, rejects = block.rows, block.rejects
        count = 0
        width, number_rows = self.width, self.number_rows
        first_line = self.line
        timestamp_index = self.timestamp_index
        is_timestamp, fromisoformat = iso_shaped, datetime.fromisoformat
        first_day, last_day = _NO_DAY, ""  # the least and greatest dates seen
        done = progress.lines
        try:
            for row in reader:
                line = first_line + done + 1
                done = reader.line_num
                if len(row) != width:
                    if row:  # a blank line is no record; anything else needs every field
                        rejects.append(_reject(line, row, self._width_reason(row)))
                    else:
                        block.has_blank_lines = True
                    continue
                if not clean and (reason := _dirty_reason(row)):
                    rejects.append(_reject(line, row, reason))
                    continue
                if timestamp_index is not None:  # the checks of parse_timestamp, inlined
                    value = row[timestamp_index]
                    try:
                        if not is_timestamp(value):
                            raise ValueError(value)
                        fromisoformat(value)
                    except ValueError:
                        reason = self._timestamp_reason(row, timestamp_index)
                        rejects.append(_reject(line, row, reason))
                        continue
                    day = value[:10]
                    if day < first_day:
                        first_day = day
                    if day > last_day:
                        last_day = day
                if number_rows:
                    row.append(line)  # type: ignore[arg-type]  # a line number ends the row
                if keep_rows:
                    rows.append(row)
                else:
                    count += 1
        finally:
            progress.lines = done
            block.count = len(rows) if keep_rows else block.count + count
            if last_day:
                block.first_day = min(first_day, block.first_day or first_day)
                block.last_day = max(last_day, block.last_day or last_day)

    def _timestamp_reason(self, row: list[str], index: int) -> str:
        name, value = self.columns[index], row[index]
        shown = value if len(value) <= PREVIEW_CHARS else f"{value[:PREVIEW_CHARS]}…"
        return f"column {name!r} is not an ISO 8601 date-time: {shown!r}"

    def _width_reason(self, row: list[str]) -> str:
        return f"expected {self.width} fields, found {len(row)}"


_NO_DAY = "9999-99-99"  # after every date


class _LinesDone:
    """How many lines of a chunk complete records have used, kept across a csv.Error."""

    lines = 0


def _taken(records: bytes, raw_if: Callable[[bytes], bool] | None) -> bool:
    """Whether records Python has read as good may be taken as they are."""
    return raw_if is not None and arrowcheck.quotes_make_fields(records) and raw_if(records)


def _line_end(data: bytes) -> str:
    if data.endswith(b"\r\n"):
        return "\r\n"
    return "\r" if data.endswith(b"\r") else "\n"


def _decode(data: bytes) -> tuple[str, bool]:
    """Decoded text, and whether it is clean (valid UTF-8 without NUL) as a whole."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", "surrogateescape"), False
    return text, "\x00" not in text


def _dirty_reason(row: list[str]) -> str | None:
    joined = "\x1f".join(row)
    if "\x00" in joined:
        return "contains a NUL character"
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    return None


def _reject(line: int, row: list[str], reason: str) -> Reject:
    # The record as CSV again, quoted where it must be, so that its fields can be told apart;
    # kept as text any database can store: no lone surrogates (bad UTF-8), no NUL.
    record = io.StringIO()
    csv.writer(record, lineterminator="").writerow(row)
    content = record.getvalue()[:PREVIEW_CHARS].encode("utf-8", "replace").decode("utf-8")
    return Reject(line, reason, content.replace("\x00", "\ufffd"))
