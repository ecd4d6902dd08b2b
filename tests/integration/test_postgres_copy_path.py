"""The PostgreSQL store's fast path: blocks whose bytes COPY reads as Python did go in as they
are, the others are written out again, in one COPY stream, and nothing is refused. Collected
only when the suite runs on PostgreSQL."""

import logging

import pytest
from django.test import override_settings

from collect.datasets.stores import postgres
from collect.imports import csvsource
from collect.jobs.runner import run_job
from collect.jobs.states import Status
from tests.conftest import segment_rows

pytestmark = pytest.mark.django_db

GOOD = [
    ["{n}", "2025-06-01T10:00:00+02:00", "plain {n}"],
    ["{n}", "2025-06-02", 'a "quoted", one'],
    ["{n}", "2025-06-05 08:00", "pasted\r\ntext, and\nmore"],  # CRLF in an LF file, LF in CRLF
    ["{n}", "2025-06-06T08:00:00.5Z", "+49 30 1234"],  # a formula start: a flag, not trouble
]
# Each of these sends its block down the path that writes the rows out again.
ODD = [
    ["{n}", "2025-06-03", 'bare"quote'],  # a quote inside an unquoted field
    ["{n}", "2025-06-04", "two\nlines and a lone \r here"],
    ["{n}", "not a date", "rejected"],
]


def mixed_file(line_end: str, rows: int) -> tuple[bytes, list[list[str]]]:
    lines, kept = [f"id,submitted_at,note{line_end}"], []
    for n in range(rows):
        shape = ODD[n // 40 % len(ODD)] if n % 120 in range(80, 81) else GOOD[n % len(GOOD)]
        values = [cell.replace("{n}", str(n)) for cell in shape]
        if shape is ODD[0]:
            lines.append(",".join(values) + line_end)
        else:
            lines.append(",".join(_quoted(value) for value in values) + line_end)
        if values[1] != "not a date":
            kept.append(values)
        if n % 500 == 0:
            lines.append(line_end)  # a blank line: no record
        if n % 700 == 0:
            lines.append(f"\\.{line_end}")  # COPY's end of data, as a (rejected) record
    return "".join(lines).encode(), kept


def _quoted(value: str) -> str:
    if any(character in value for character in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
@override_settings(COLLECT_BATCH_ROWS=700)
def test_a_file_of_mixed_blocks_imports_exactly_on_the_fast_path(
    start_import, monkeypatch, caplog, line_end
):
    # Many blocks in every batch, and one that fails the check is halved a few times.
    monkeypatch.setattr(csvsource, "BLOCK_BYTES", 2048)
    monkeypatch.setattr(csvsource, "CHECK_BYTES", 8192)
    monkeypatch.setattr(csvsource, "MIN_CHECK_BYTES", 1024)
    taken_as_is = []
    reads_alike = postgres.PostgresStore.takes_as_is
    monkeypatch.setattr(
        postgres.PostgresStore,
        "takes_as_is",
        lambda store, data: reads_alike(store, data) and (taken_as_is.append(data) or True),
    )
    read_by_python = []
    parse = csvsource.CsvSource._parse
    monkeypatch.setattr(
        csvsource.CsvSource,
        "_parse",
        lambda source, *args, **kwargs: (
            read_by_python.append(result := parse(source, *args, **kwargs)) or result
        ),
    )
    content, kept = mixed_file(line_end, 3000)
    with caplog.at_level(logging.WARNING):
        job = run_job(start_import(content, on_error="skip").pk, worker="test-worker")
    assert job.status == Status.COMPLETED, job.error
    assert [list(row[2:]) for row in segment_rows(job)] == kept
    assert job.rows_rejected == 3000 - len(kept) + len(range(0, 3000, 700))
    assert "COPY refused" not in caplog.text
    # Blocks went in as they were to the end of the file, between those written out again.
    assert len(taken_as_is) >= 25
    last_rows = taken_as_is[-1].splitlines()
    assert int(last_rows[-1].split(b",")[0]) > 2_800
    # Python read only the lines near the trouble, not the multi-line and formula-like ones.
    assert sum(lines for lines, _ in read_by_python) < content.count(b"\n") / 2
