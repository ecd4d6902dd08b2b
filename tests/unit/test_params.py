"""What the job kinds keep in a job's JSON fields, and the export range they are made from."""

import pytest

from collect.errors import InvalidInput
from collect.exports.params import ExportCheckpoint, ExportParams, PlannedSegment
from collect.exports.services import export_range
from collect.imports.params import ImportCheckpoint, ImportParams
from collect.timestamps import DAY, parse_timestamp

IMPORT = ImportParams(
    path="f.csv",
    filename="form.csv",
    upload_id=None,
    columns=["id", "submitted_at"],
    on_error="skip",
    timestamp_index=1,
    default_timestamp=1_700_000_000_000_000,
)


def test_params_and_checkpoints_survive_json():
    assert ImportParams.from_json(IMPORT.to_json()) == IMPORT
    assert IMPORT.to_json()["max_rejects"] is None
    checkpoint = ImportCheckpoint(offset=17, line=1, first_day="2024-01-01")
    assert ImportCheckpoint.from_json(checkpoint.to_json()) == checkpoint
    assert ExportCheckpoint.from_json({}) == ExportCheckpoint(0, 0, 0, [])


def test_keys_a_kind_no_longer_knows_are_ignored():
    assert ImportParams.from_json({**IMPORT.to_json(), "retired": 1}) == IMPORT


def test_an_export_plan_is_its_segments_in_order():
    first = PlannedSegment(table="segment_a", timestamp_index=1, filter=True, last_line=10)
    second = PlannedSegment(table="segment_b", timestamp_index=None, filter=False, last_line=3)
    params = ExportParams(
        range={"from": "2024-01-01", "to": "2024-01-02"},
        start=0,
        end=DAY,
        header=["id"],
        columns=[1],
        raw=False,
        segments=[first.to_json(), second.to_json()],
        lines_total=13,
    )
    assert ExportParams.from_json(params.to_json()).plan() == [first, second]


@pytest.mark.parametrize(
    ("first", "last", "span"),
    [
        ("2024-01-01", "2024-01-01", ("2024-01-01", "2024-01-02")),  # a day, inclusive
        ("2024-01-01", "2024-01-31", ("2024-01-01", "2024-02-01")),
        ("2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z", ("2024-01-01T10:00:00Z", None)),
        ("2024-01-01T12:00:00+02:00", "2024-01-02", ("2024-01-01T10:00:00Z", "2024-01-03")),
    ],
)
def test_a_range_is_inclusive_of_its_end(first, last, span):
    start, end = span
    expected_end = parse_timestamp(last) + 1 if end is None else parse_timestamp(end)
    assert export_range(first, last) == (parse_timestamp(start), expected_end)


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        (None, "2024-01-01", "from is required"),
        ("2024-01-01", "", "to is required"),
        ("2024-13-01", "2024-01-02", "from '2024-13-01' is not a date"),
        ("2024-01-01", "soon", "to 'soon' is not a date"),
        ("2024-02-01", "2024-01-01", "the range starts after it ends: from 2024-02-01 is later"),
    ],
)
def test_a_bad_range_says_what_is_wrong(first, last, message):
    with pytest.raises(InvalidInput) as refused:
        export_range(first, last)
    assert refused.value.message.startswith(message)
