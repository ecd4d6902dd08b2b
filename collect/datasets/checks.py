"""A segment store that does not fit the database is refused at start, not at first use."""

from typing import Any

from django.core.checks import CheckMessage, Error, register
from django.db import connection


@register()
def store_fits_the_database(**kwargs: Any) -> list[CheckMessage]:
    from collect.datasets.stores import segment_store

    try:
        store = segment_store()
    except ImportError as error:
        return [Error(f"COLLECT_SEGMENT_STORE cannot be imported: {error}", id="collect.E001")]
    if store.vendor != connection.vendor:
        return [
            Error(
                f"the segment store {type(store).__name__} works with {store.vendor}, "
                f"not with this {connection.vendor} database",
                hint="leave COLLECT_SEGMENT_STORE unset to get the store of the database",
                id="collect.E002",
            )
        ]
    return []
