"""Reading an uploaded CSV file as a stream of parsed blocks, resumable at any block boundary.

This is the import's hot path, so the common case stays inside C code: a block of ~1 MiB is
decoded in one call and parsed by one `csv.reader`; per row Python only checks the field
count and, when there is one, parses the timestamp. Rare trouble (bad UTF-8, NUL, broken
quoting) sends only its own block down a slower, row-by-row path.

A block always ends at a record boundary, so `(offset, line)` after any block is a checkpoint
from which a new reader continues with no row read twice and none skipped.
"""

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import BinaryIO, NamedTuple

BLOCK_BYTES = 1 << 20
MAX_FIELD_CHARS = 1 << 20
MAX_HEADER_BYTES = 1 << 20
PREVIEW_CHARS = 200

csv.field_size_limit(MAX_FIELD_CHARS)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)


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
    rows: list[list] = field(default_factory=list)  # fields..., timestamp, line
    rejects: list[Reject] = field(default_factory=list)


class HeaderError(ValueError):
    pass


def parse_timestamp(text: str) -> int:
    """An ISO 8601 date or date-time as microseconds since the epoch; naive means UTC."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        return (moment - _EPOCH_NAIVE) // _MICROSECOND
    return (moment - _EPOCH) // _MICROSECOND


def read_header(stream: BinaryIO) -> Header:
    """The first record of the file: the column names, exactly as written."""
    head = stream.read(MAX_HEADER_BYTES)
    if not head.strip():
        raise HeaderError("the file is empty")
    bom = len(b"\xef\xbb\xbf") if head.startswith(b"\xef\xbb\xbf") else 0
    cut = _last_line_end(head) if len(head) == MAX_HEADER_BYTES else len(head)
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


def _last_line_end(data: bytes) -> int:
    """Just past the last line break; 0 if there is none. A CR at the very end may be the
    first half of a CRLF, so it only counts once the next byte is known."""
    return data.rfind(b"\n") + 1 or data.rfind(b"\r", 0, len(data) - 1) + 1


class CsvSource:
    """Parses data records from `offset` (just after line `line`) on, a block at a time."""

    def __init__(
        self,
        stream: BinaryIO,
        *,
        offset: int,
        line: int,
        columns: list[str],
        timestamp_index: int | None,
        default_timestamp: int,
    ) -> None:
        self.stream = stream
        self.offset = offset
        self.line = line
        self.columns = columns
        self.width = len(columns)
        self.timestamp_index = timestamp_index
        self.default_timestamp = default_timestamp
        self.pending = b""
        self.exhausted = False
        stream.seek(offset)

    @property
    def finished(self) -> bool:
        return self.exhausted and not self.pending

    def read_block(self, max_bytes: int = BLOCK_BYTES) -> Block | None:
        """The next block of parsed records, or None at the end of the file. A block holds
        the records of about `max_bytes` of the file (at least one whole record)."""
        data, at_end = self._next_chunk(min(max_bytes, BLOCK_BYTES))
        if not data:
            return None
        text, clean = _decode(data)
        block = Block()
        consumed_lines, complete = self._parse(text, clean, at_end, block)
        if complete:  # the usual case: the chunk ended with a record
            consumed_bytes = len(data)
        else:  # a record runs on into the next chunk: read its lines again with that chunk
            lines = io.StringIO(text, newline="").readlines()[:consumed_lines]
            consumed_bytes = len("".join(lines).encode("utf-8", "surrogateescape"))
            self.pending = data[consumed_bytes:] + self.pending
        self.offset += consumed_bytes
        self.line += consumed_lines
        return block

    def _next_chunk(self, size: int) -> tuple[bytes, bool]:
        """Bytes up to the last line break read so far, and whether the file ends there."""
        while True:
            chunk = self.stream.read(size)
            if not chunk:
                self.exhausted = True
                data, self.pending = self.pending, b""
                return data, True
            data = self.pending + chunk
            cut = _last_line_end(data)
            if cut:
                self.pending = data[cut:]
                return data[:cut], False
            self.pending = data
            if len(data) > MAX_FIELD_CHARS * 4:
                return data, False  # one huge line: let the parser reject it

    def _parse(self, text: str, clean: bool, at_end: bool, block: Block) -> tuple[int, bool]:
        """Parse `text` into `block`. Returns how many of its lines were used, and whether
        that is all of them (else the last record goes on past the end of `text`)."""
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        progress = _LinesDone()
        while True:
            try:
                self._parse_rows(reader, progress, clean, block)
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

    def _parse_rows(self, reader, progress: "_LinesDone", clean: bool, block: Block) -> None:
        rows, rejects = block.rows, block.rejects
        width = self.width
        first_line = self.line
        timestamp_index = self.timestamp_index
        default_timestamp = self.default_timestamp
        fromisoformat = datetime.fromisoformat
        done = progress.lines
        try:
            for row in reader:
                line = first_line + done + 1
                done = reader.line_num
                if len(row) != width:
                    if row:  # a blank line is no record; anything else needs every field
                        rejects.append(_reject(line, row, self._width_reason(row)))
                    continue
                if not clean and (reason := _dirty_reason(row)):
                    rejects.append(_reject(line, row, reason))
                    continue
                if timestamp_index is None:
                    row.append(default_timestamp)
                else:  # parse_timestamp, inlined: this loop runs once per row
                    try:
                        moment = fromisoformat(row[timestamp_index])
                    except ValueError:
                        rejects.append(_reject(line, row, self._timestamp_reason(row)))
                        continue
                    epoch = _EPOCH_NAIVE if moment.tzinfo is None else _EPOCH
                    row.append((moment - epoch) // _MICROSECOND)
                row.append(line)
                rows.append(row)
        finally:
            progress.lines = done

    def _timestamp_reason(self, row: list[str]) -> str:
        name, value = self.columns[self.timestamp_index], row[self.timestamp_index]
        return f"column {name!r} is not an ISO 8601 date-time: {value!r}"

    def _width_reason(self, row: list[str]) -> str:
        return f"expected {self.width} fields, found {len(row)}"


class _LinesDone:
    """How many lines of a chunk complete records have used, kept across a csv.Error."""

    lines = 0


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
    content = ",".join(row)[:PREVIEW_CHARS].encode("utf-8", "replace").decode("utf-8")
    return Reject(line, reason, content)
