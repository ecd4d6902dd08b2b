"""Cells as CSV, for anything Collect writes out: exports and rejected rows."""

import csv
import io
from collections.abc import Iterable, Sequence
from itertools import accumulate

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Each byte that can start a field as a comma, each that can start a formula as "=".
_MARKED = bytes.maketrans(
    b"\n" + "".join(FORMULA_STARTS).encode(), b"," + b"=" * len(FORMULA_STARTS)
)
_QUOTED_FORMULA = b',"='  # of marked bytes


def neutralised(value: str) -> str:
    """OWASP's advice against CSV injection: a cell that starts like a formula gets a
    leading single quote, so a spreadsheet shows it as text."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def csv_bytes(rows: Iterable[Sequence[object]]) -> bytes:
    """Rows as CSV with LF line ends, as PostgreSQL's COPY TO writes them. Every field is
    quoted: csv would otherwise leave a field holding a lone CR bare."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL).writerows(rows)
    return buffer.getvalue().encode("utf-8")


def neutralised_quoted(records: bytes) -> bytes:
    """`neutralised` on every quoted cell of `records`: whole CSV records with LF line ends
    (as COPY TO writes them), where each cell that may start like a formula is quoted. The
    leading single quote goes just inside the cell's opening quote. A quote right after a
    comma or a line end opens a cell: inside a quoted cell quotes come in pairs, and a pair's
    first is followed by its second. So `[,\\n]"[formula start]` is such a cell's start and
    nothing else, and bytes.translate and bytes.split find them all in C (what that costs
    against SQL: postgres.MAX_NEUTRALISED_IN_SQL)."""
    marked = records.translate(_MARKED)
    pieces = marked.split(_QUOTED_FORMULA)
    # Where a quote goes: after the first two bytes of each `,"=`.
    points = [end - 1 for end in accumulate(len(piece) + 3 for piece in pieces[:-1])]
    if marked.startswith(b'"='):  # the first record's first cell
        points.insert(0, 1)
    if not points:
        return records
    bounds = [0, *points, len(records)]
    return b"'".join(map(records.__getitem__, map(slice, bounds[:-1], bounds[1:])))
