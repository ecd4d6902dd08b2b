"""Form responses of other shapes than `collect generate`'s, made apart from it, so that the
import is not measured only on the rows it was tuned on (`bench/run.py --data shapes`):

- crlf: 7 columns, CRLF line ends, LF inside quoted answers, three timestamp styles;
- phone: 5 columns, timestamps in file order, a `+49 …` phone column and a signed number
  (cells that start like a formula in every block), CRLF pasted into answers of an LF file;
- wide: 30 columns of answers, ~340 bytes a row;
- notime: 4 columns, no timestamp column, long answers;
- essays: 4 columns, answers of 200-600 characters in paragraphs (dozens of lines a record,
  blank lines inside quotes), ~0.9 kB a row.

Every row is good: an import must take them all.
"""

import csv
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

CITIES = ["Zürich", "São Paulo", "東京", "Kraków", "Москва", "Reykjavík", "Αθήνα", "Dublin"]
NAMES = ["Anna Müller", "José García", "Mary O'Neil", "李雷", "Zoë Smith", "Łukasz Nowak"]
ANSWERS = [
    "yes",
    "no",
    "",
    "I liked it, mostly",
    'He said "great", then left',
    "line one\nline two",
    "-",
    "+1",
    "n/a",
    "Très bien!",
    "👍 loved it",
    "Could be better;\r\nthe form was long",  # pasted from elsewhere
]
STYLES = ["%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f+02:00"]
START = datetime(2024, 1, 1)

Row = Callable[[random.Random, int], list[object]]


def _moment(rng: random.Random, seconds: int) -> str:
    return (START + timedelta(seconds=seconds)).strftime(rng.choice(STYLES))


def _crlf(rng: random.Random, n: int) -> list[object]:
    moment = _moment(rng, rng.randrange(365 * 86400))
    city, answers = rng.choice(CITIES), [rng.choice(ANSWERS) for _ in range(2)]
    return [n, moment, rng.choice(NAMES), city, rng.randint(1, 5), *answers]


def _phone(rng: random.Random, n: int) -> list[object]:
    phone = f"+49 {rng.randint(100, 999)} {rng.randint(100000, 999999)}"
    delta, comment = rng.randint(-50, 50), rng.choice(ANSWERS)
    return [_moment(rng, n * 37), phone, rng.choice(NAMES), delta, comment]


def _wide(rng: random.Random, n: int) -> list[object]:
    moment = _moment(rng, rng.randrange(365 * 86400))
    return [n, moment, *(rng.choice(ANSWERS + CITIES) for _ in range(28))]


def _essay(rng: random.Random) -> str:
    paragraphs = [" ".join(rng.choice(ANSWERS) for _ in range(rng.randint(3, 8)))]
    while sum(map(len, paragraphs)) < rng.randint(200, 600):
        paragraphs.append(" ".join(rng.choice(ANSWERS + CITIES) for _ in range(rng.randint(3, 8))))
    return "\n\n".join(paragraphs)


def _essays(rng: random.Random, n: int) -> list[object]:
    return [n, _moment(rng, rng.randrange(365 * 86400)), _essay(rng), _essay(rng)]


def _notime(rng: random.Random, n: int) -> list[object]:
    text = " ".join(rng.choice(ANSWERS) for _ in range(8))
    return [n, rng.choice(NAMES), rng.choice(CITIES), text]


SHAPES: dict[str, tuple[list[str], Row, str]] = {
    "crlf": (["id", "submitted_at", "name", "city", "score", "q1", "q2"], _crlf, "\r\n"),
    "phone": (["submitted_at", "phone", "name", "delta", "comment"], _phone, "\n"),
    "wide": (["id", "submitted_at", *(f"q{n}" for n in range(28))], _wide, "\n"),
    "notime": (["id", "name", "city", "text"], _notime, "\n"),
    "essays": (["id", "submitted_at", "story", "improve"], _essays, "\n"),
}


def write_shape(name: str, rows: int, path: Path) -> int:
    """Write `rows` rows of shape `name` to `path`; returns its width."""
    header, row, line_end = SHAPES[name]
    rng = random.Random(f"{name}-{rows}")
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator=line_end)
        writer.writerow(header)
        writer.writerows(row(rng, n) for n in range(rows))
    return len(header)
