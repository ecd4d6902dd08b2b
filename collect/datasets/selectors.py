"""Reading datasets and their catalog."""

from collect.datasets.models import Dataset, Segment
from collect.timestamps import span_of_days


def segments_in_range(dataset: Dataset, start: int, end: int) -> list[tuple[Segment, bool]]:
    """The segments of the dataset that may hold rows timed in [start, end) µs, in the order
    their imports completed, each with whether its rows must be filtered by time (False
    when all of its rows are in the range). Reads the catalog only: no segment's table."""
    chosen = []
    for segment in Segment.objects.filter(dataset=dataset).order_by("created_at", "id"):
        if segment.timestamp_index is None:  # every row has the same time
            if start <= segment.default_timestamp < end:
                chosen.append((segment, False))
            continue
        if not segment.first_day:  # the span is not known (cataloged before it was kept)
            chosen.append((segment, True))
            continue
        first, last = span_of_days(segment.first_day, segment.last_day)
        if first < end and start < last:
            chosen.append((segment, not (start <= first and last <= end)))
    return chosen
