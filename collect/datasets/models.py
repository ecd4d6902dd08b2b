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
