"""The import's choices, shared by the models, the API, tus metadata and the command line
(which imports this before Django is set up: no models here)."""

from django.db import models


class OnError(models.TextChoices):
    """What an import does with a row it cannot take."""

    ABORT = "abort", "fail the import at the first bad row"
    SKIP = "skip", "keep the row aside with its line and reason, and go on"
