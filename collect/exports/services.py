"""Starting an export: the date range, the columns, and the segments it will read."""

import re
import uuid

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from collect.datasets.models import Dataset
from collect.datasets.selectors import segments_in_range
from collect.datasets.services import dataset_check_name, names_in_words
from collect.errors import InvalidInput, NotFound
from collect.exports.params import ExportParams, PlannedSegment
from collect.jobs.dispatch import job_enqueue
from collect.jobs.models import Job
from collect.jobs.services import job_check_room
from collect.jobs.states import Kind
from collect.timestamps import DAY, parse_timestamp

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def export_range(
    start: str | None, end: str | None, *, names: tuple[str, str] = ("from", "to")
) -> tuple[int, int]:
    """[start, end) in µs since the epoch, from inclusive bounds: days (UTC) or ISO 8601
    date-times. Errors name the bounds as the caller sent them (`names`: the brief's
    `from_date` and `to_date`, or `from` and `to`)."""
    first_name, last_name = names
    missing = [name for name, value in zip(names, (start, end), strict=True) if not value]
    if missing:
        raise InvalidInput(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required: "
            f"the range's first and last day, e.g. {first_name}=2026-01-01 and "
            f"{last_name}=2026-01-31"
        )
    assert start and end  # for the type checker: both were just checked
    first = _moment(start, first_name)
    last = _moment(end, last_name)
    if first > last:
        raise InvalidInput(
            f"the range starts after it ends: {first_name} {start} is later than {last_name} {end}"
        )
    # An inclusive end: a whole day, or the very microsecond given.
    return first, last + (DAY if _DATE.fullmatch(end) else 1)


def _moment(text: str, which: str) -> int:
    try:
        return parse_timestamp(text)
    except ValueError:
        raise InvalidInput(
            f"{which} {text!r} is not a date (YYYY-MM-DD) or an ISO 8601 date-time"
        ) from None


def export_start(
    *,
    owner: User,
    dataset_name: str,
    first: str | None,
    last: str | None,
    columns: list[str] | None = None,
    raw: bool = False,
    range_names: tuple[str, str] = ("from", "to"),
) -> Job:
    """Create and queue the export of the owner's dataset rows from `first` to `last`
    (inclusive days or date-times), from the imports completed by now. `range_names` are
    the names the caller gave the two bounds, for its error messages."""
    start, end = export_range(first, last, names=range_names)
    dataset_check_name(dataset_name)
    try:
        dataset = Dataset.objects.get(owner=owner, name=dataset_name)
    except Dataset.DoesNotExist:
        raise NotFound(f"you have no dataset {dataset_name!r}") from None
    header = columns or dataset.columns
    unknown = [name for name in header if name not in dataset.columns]
    if unknown:
        raise InvalidInput(
            f"columns: dataset {dataset_name!r} has no column {names_in_words(unknown)}; "
            f"its columns are {names_in_words(dataset.columns, conjunction='and')}",
            columns=dataset.columns,
        )
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise InvalidInput(
            f"columns: {names_in_words(twice, conjunction='and')} asked for more than once",
            columns=dataset.columns,
        )
    plan = [
        PlannedSegment(
            table=segment.table,
            timestamp_index=segment.timestamp_index,
            filter=filtered,
            last_line=segment.last_line,
            rows=segment.rows,
            formula_columns=segment.formula_columns,
        )
        for segment, filtered in segments_in_range(dataset, start, end)
    ]
    job = Job(id=uuid.uuid4(), kind=Kind.EXPORT, owner=owner, dataset=dataset)
    job.queued_at = timezone.now()
    job.params = ExportParams(
        range={"from": first, "to": last},
        start=start,
        end=end,
        header=header,
        columns=[dataset.columns.index(name) + 1 for name in header],
        raw=raw,
        segments=[segment.to_json() for segment in plan],
        lines_total=sum(segment.last_line for segment in plan),
    ).to_json()
    with transaction.atomic():
        job_check_room(owner)
        job.save()
        job_enqueue(job.id)
    return job
