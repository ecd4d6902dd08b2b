"""collect.timestamps: the one timestamp rule, ISO 8601 in, µs since the epoch (UTC) out."""

from datetime import UTC, datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from collect.timestamps import (
    DAY,
    FIRST_MOMENT,
    ISO_TIMESTAMP,
    LAST_MOMENT,
    day_start,
    iso_shaped,
    microseconds,
    moment_iso,
    parse_timestamp,
    span_of_days,
    timestamp_or_none,
)


def test_timestamps_are_parsed_to_microseconds_in_utc():
    assert parse_timestamp("1970-01-01T00:00:01Z") == 1_000_000
    assert parse_timestamp("1970-01-01T01:00:01+01:00") == 1_000_000
    assert parse_timestamp("1970-01-01 00:00:00.5") == 500_000  # naive means UTC
    assert parse_timestamp("1970-01-02") == 86_400_000_000
    with pytest.raises(ValueError):
        parse_timestamp("yesterday")


def test_timestamps_outside_iso_extended_format_are_refused():
    for value in ["20240105T101112", "2024-W01-1", "2024-005", "2024-01-05T10:11:12.1234567"]:
        with pytest.raises(ValueError):
            parse_timestamp(value)


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("2025-06-01T10:00:00+15:59", True),  # as far as PostgreSQL goes
        ("2025-06-01T10:00:00-15:59", True),
        ("2025-06-01T10:00:00+16:00", False),  # Python would take it, PostgreSQL not
        ("2025-06-01T10:00:00+20:00", False),
        ("2025-06-01T10:00+0200", True),
        ("2025-06-01T10:00:00.123456Z", True),
    ],
)
def test_an_offset_is_at_most_what_postgresql_holds(text, accepted):
    assert (timestamp_or_none(text) is not None) is accepted


def test_timestamp_or_none_says_none_for_what_is_not_one():
    assert timestamp_or_none("1970-01-01T00:00:00.000001Z") == 1
    assert timestamp_or_none("never") is None
    assert timestamp_or_none("") is None
    assert timestamp_or_none(None) is None


def test_moments_go_both_ways():
    moment = datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC)
    assert microseconds(moment) == parse_timestamp("2024-02-29T23:59:59.999999Z")
    assert moment_iso(microseconds(moment)) == "2024-02-29T23:59:59.999999+00:00"
    assert moment_iso(0) == "1970-01-01T00:00:00+00:00"
    assert moment_iso(FIRST_MOMENT) == "0001-01-01T00:00:00+00:00"
    assert moment_iso(LAST_MOMENT) == "9999-12-31T23:59:59.999999+00:00"


def test_a_span_of_days_holds_every_offset_of_its_dates():
    assert day_start("2024-01-02") == parse_timestamp("2024-01-02") == DAY * 19_724
    start, end = span_of_days("2024-01-01", "2024-01-02")
    assert (start, end) == (day_start("2023-12-31"), day_start("2024-01-04"))
    assert start <= parse_timestamp("2024-01-01T00:00:00+15:59")
    assert parse_timestamp("2024-01-02T23:59:59.999999-15:59") < end


# Strings near the rule's edges: its own characters, a few others (a non-ASCII digit among
# them), in lengths around those of its forms.
_NEAR_TIMESTAMPS = st.one_of(
    st.from_regex(ISO_TIMESTAMP, fullmatch=True),
    st.text(alphabet="0123456789-:T Z+.,1\uff15é\n", max_size=34),
    st.from_regex(ISO_TIMESTAMP, fullmatch=True).map(lambda text: text[:-1]),
    st.from_regex(ISO_TIMESTAMP, fullmatch=True).map(lambda text: f"{text}0"),
)


@given(_NEAR_TIMESTAMPS)
@example("2025-02-07T01:25:05+16:00")
@example("2025-02-07T01:25:05+15:59")
@example("2025-02-07T01:25:05-1530")
@example("2025-02-07T01:25:05.1234567")
@example("\uff12025-02-07")  # a fullwidth digit two
def test_the_quick_shape_check_is_the_rule_exactly(text):
    assert iso_shaped(text) == (ISO_TIMESTAMP.fullmatch(text) is not None)
