from django.db import models


class RejectedRow(models.Model):
    """A record an import could not take, with its line in the file and why."""

    job = models.ForeignKey("jobs.Job", on_delete=models.CASCADE, related_name="rejected_rows")
    line = models.BigIntegerField()
    reason = models.TextField()
    content = models.TextField(blank=True, default="")  # the record's start, for a reader

    class Meta:
        ordering = ["line"]
        indexes = [models.Index(fields=["job", "line"], name="rejected_row_job_line")]

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"
