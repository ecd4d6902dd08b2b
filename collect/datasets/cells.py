"""Cells as CSV, for anything Collect writes out: exports and rejected rows."""

import csv
import io
from collections.abc import Iterable, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


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
