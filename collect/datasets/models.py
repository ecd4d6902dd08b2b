from django.conf import settings
from django.db import models


class Dataset(models.Model):
    """A form: its columns in header order. Its records live in per-import segment tables."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    name = models.CharField(max_length=100)
    columns = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="dataset_unique_name_per_owner")
        ]

    def __str__(self) -> str:
        return self.name


class Segment(models.Model):
    """The catalog of a dataset's records: one row per completed import, written in the
    transaction that completes it, so that an export plans from here without reading a
    segment's table or another job's parameters."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="segments")
    job = models.OneToOneField("jobs.Job", on_delete=models.CASCADE, related_name="segment")
    table = models.CharField(max_length=63)  # in the store of this deployment
    width = models.PositiveIntegerField()
    # The column rows are dated by (0-based), or none: then every row has `default_timestamp`.
    timestamp_index = models.PositiveIntegerField(null=True, blank=True)
    default_timestamp = models.BigIntegerField()  # µs since the epoch
    rows = models.BigIntegerField()
    # Every line of the segment is at most this; a store's line is a position in file order
    # (SQLite: the file line; PostgreSQL: the heap page).
    last_line = models.BigIntegerField()
    # The dates rows are written with (YYYY-MM-DD, each in its own offset), if known.
    first_day = models.CharField(max_length=10, blank=True, default="")
    last_day = models.CharField(max_length=10, blank=True, default="")
    # The columns (0-based) where a cell may start like a formula, which an export that
    # neutralises must look at; null: not known, any may.
    formula_columns = models.JSONField(null=True, blank=True, default=None)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.table
