"""A dispatch setting no dispatcher answers to is refused at start: jobs would wait forever."""

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

DISPATCHERS = ("inprocess", "celery")


@register()
def dispatch_is_known(**kwargs: Any) -> list[CheckMessage]:
    if settings.COLLECT_DISPATCH in DISPATCHERS:
        return []
    return [
        Error(
            f"COLLECT_DISPATCH is {settings.COLLECT_DISPATCH!r}; it must be one of "
            f"{', '.join(DISPATCHERS)}",
            id="collect.E003",
        )
    ]
