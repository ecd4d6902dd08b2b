"""Reading datasets and their catalog."""

from django.contrib.auth.models import User
from django.db.models import Count, Max, Min, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from collect.datasets.models import Dataset, Segment
from collect.errors import NotFound
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


def datasets_visible_to(user: User) -> QuerySet[Dataset]:
    """The user's datasets (staff: everyone's), each with the totals of its catalog: rows and
    imports of its completed imports, and the first and last day of their records."""
    datasets = Dataset.objects.select_related("owner")
    if not user.is_staff:
        datasets = datasets.filter(owner=user)
    dated = ~Q(segments__first_day="")  # a segment cataloged before spans were kept
    return datasets.annotate(
        rows=Coalesce(Sum("segments__rows"), 0),
        imports=Count("segments"),
        first_day=Min("segments__first_day", filter=dated),
        last_day=Max("segments__last_day", filter=dated),
    ).order_by("name", "owner__username")


def dataset_visible_to(user: User, name: str, *, owner: str | None = None) -> Dataset:
    """The dataset `name` of this user; staff may name another `owner` (by username), and
    otherwise get their own, else the oldest of that name. Another user's is absent."""
    datasets = datasets_visible_to(user).filter(name=name)
    if owner:
        datasets = datasets.filter(owner__username=owner)
    dataset = datasets.filter(owner=user).first() or datasets.order_by("created_at").first()
    if dataset is None:
        raise NotFound(f"no dataset {name!r}")
    return dataset
