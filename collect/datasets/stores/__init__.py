"""The segment store of this deployment, chosen once from COLLECT_SEGMENT_STORE."""

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from collect.datasets.stores.base import (
    Batch,
    RecordBlock,
    RecordTooBig,
    SegmentStore,
    TimeFilter,
    segment_table,
)

__all__ = [
    "Batch",
    "RecordBlock",
    "RecordTooBig",
    "SegmentStore",
    "TimeFilter",
    "segment_store",
    "segment_table",
]


@cache
def segment_store() -> SegmentStore:
    store: SegmentStore = import_string(settings.COLLECT_SEGMENT_STORE)()
    return store
