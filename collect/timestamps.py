"""The one timestamp rule of Collect, shared by every layer: ISO 8601 in, microseconds since
the epoch (UTC) out, read the same way by Python here and by each store when it filters an
export."""

import re
from datetime import UTC, date, datetime, timedelta

# ISO 8601's extended format. No zone means UTC; an offset is at most 15:59, as far as
# PostgreSQL goes (Python would take up to 23:59).
ISO_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-](?:0[0-9]|1[0-5])(?::?[0-9]{2})?)?)?"
)


def _iso_shapes() -> dict[bytes, int]:
    """Each form ISO_TIMESTAMP takes, its digits written 0, and where its offset's hours
    start (0 if it has none)."""
    shapes = {b"0000-00-00": 0}
    fractions = [f"00:00:00.{'0' * digits}" for digits in range(1, 7)]
    for separator in "T ":
        for time in ["00:00", "00:00:00", *fractions]:
            head = f"0000-00-00{separator}{time}"
            shapes[head.encode()] = shapes[f"{head}Z".encode()] = 0
            for sign in "+-":
                for offset in ("00", "0000", "00:00"):
                    shapes[f"{head}{sign}{offset}".encode()] = len(head) + 1
    return shapes


_ISO_SHAPES = _iso_shapes()
_LONGEST_SHAPE = max(map(len, _ISO_SHAPES))
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")


def iso_shaped(text: str) -> bool:
    """ISO_TIMESTAMP.fullmatch(text), at a quarter of its cost: this runs once per imported
    row, and the regex alone took a sixth of an import's Python time."""
    if len(text) > _LONGEST_SHAPE:
        return False
    shape = text.encode("utf-8", "replace").translate(_DIGITS_AS_ZERO)
    hours_at = _ISO_SHAPES.get(shape)
    if hours_at is None:
        return False
    return not hours_at or text[hours_at : hours_at + 2] <= "15"  # PostgreSQL's limit


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
MICROSECOND = timedelta(microseconds=1)
DAY = timedelta(days=1) // MICROSECOND
# What a date-time can hold, in µs: a bound past these bounds nothing.
FIRST_MOMENT = (datetime(1, 1, 1, tzinfo=UTC) - EPOCH) // MICROSECOND
LAST_MOMENT = (datetime.max.replace(tzinfo=UTC) - EPOCH) // MICROSECOND


def parse_timestamp(text: str) -> int:
    """An ISO 8601 date or date-time as microseconds since the epoch; naive means UTC."""
    if not iso_shaped(text):
        raise ValueError(f"not an ISO 8601 date-time: {text!r}")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        return (moment - _EPOCH_NAIVE) // MICROSECOND
    return (moment - EPOCH) // MICROSECOND


def timestamp_or_none(value: str | None) -> int | None:
    """The timestamp of a value, or None for a NULL or anything that is not one."""
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except (TypeError, ValueError):  # SQLite may hand over a value that is no text
        return None


def microseconds(moment: datetime) -> int:
    """An aware date-time as microseconds since the epoch."""
    return (moment - EPOCH) // MICROSECOND


def moment_iso(microseconds: int) -> str:
    return (EPOCH + timedelta(microseconds=microseconds)).isoformat()


def day_start(day: str) -> int:
    """Midnight (UTC) of a YYYY-MM-DD date, in µs since the epoch."""
    return microseconds(datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC))


def span_of_days(first_day: str, last_day: str) -> tuple[int, int]:
    """[start, end) in µs holding every timestamp written with a date from `first_day` to
    `last_day`: an offset moves a local date by less than a day either way."""
    return day_start(first_day) - DAY, day_start(last_day) + 2 * DAY
