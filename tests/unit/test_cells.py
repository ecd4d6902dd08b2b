"""Neutralising formula cells in the bytes of CSV records, as the PostgreSQL export does in
the worker: every cell that starts like a formula, and no other, gets its leading quote."""

import csv
import io

from hypothesis import example, given
from hypothesis import strategies as st

from collect.datasets.cells import FORMULA_STARTS, neutralised, neutralised_quoted

# Cells near the trouble: formula starts, quotes, commas and line ends in every order.
_CELLS = st.text(alphabet="=+-@\t\r\n\",a'", max_size=6)


def copy_to_csv(rows: list[list[str]], quoted: list[bool]) -> bytes:
    """CSV as COPY TO writes it: LF line ends, the `quoted` columns always quoted (its
    FORCE_QUOTE), the others only when they must be (or empty, which is not NULL)."""

    def cell_csv(cell: str, always: bool) -> str:
        if always or not cell or any(char in cell for char in ',"\r\n'):
            return '"' + cell.replace('"', '""') + '"'
        return cell

    lines = (",".join(map(cell_csv, row, quoted)) + "\n" for row in rows)
    return "".join(lines).encode()


@st.composite
def records(draw: st.DrawFn) -> tuple[list[list[str]], list[bool]]:
    width = draw(st.integers(1, 5))
    quoted = draw(st.lists(st.booleans(), min_size=width, max_size=width))
    # A column that is not quoted holds no cell like a formula (the import's bound).
    plain = _CELLS.filter(lambda cell: not cell.startswith(FORMULA_STARTS))
    row = st.tuples(*(_CELLS if always else plain for always in quoted)).map(list)
    return draw(st.lists(row, min_size=1, max_size=6)), quoted


@given(records())
@example(([["=1", 'a,"=b'], ['"=', "x\n=y"]], [True, True]))
@example(([[",", "-"]], [False, True]))
def test_each_cell_like_a_formula_gets_its_quote_and_no_other_cell_changes(case):
    rows, quoted = case
    data = copy_to_csv(rows, quoted)
    read = list(csv.reader(io.StringIO(neutralised_quoted(data).decode(), newline="")))
    assert read == [[neutralised(cell) for cell in row] for row in rows]


def test_records_without_such_cells_come_back_as_they_are():
    data = b'"a","b,c"\n"d",""\n'
    assert neutralised_quoted(data) is data
