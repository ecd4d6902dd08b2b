"""An import's rejected rows as a CSV file: line, reason, content.

Built into a temporary file first, so that the server sends it as a file and a slow reader
holds no request thread. Every cell is neutralised against formulas: the content is the
file's own, and staff open these too.
"""

import csv
import io
import tempfile

from django.conf import settings

from collect.datasets.cells import neutralised
from collect.jobs.models import Job

HEADER = ["line", "reason", "content"]
SPOOL_BYTES = 1 << 20


def rejects_csv(job: Job) -> tempfile.SpooledTemporaryFile[bytes]:
    """The file, positioned at its start; the caller closes it."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - returned open
    text = io.TextIOWrapper(spool, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow(HEADER)
    kept = 0
    for line, reason, content in job.rejected_rows.values_list(
        "line", "reason", "content"
    ).iterator():
        writer.writerow([line, neutralised(reason), neutralised(content)])
        kept += 1
    if job.rows_rejected > kept:
        limit = settings.COLLECT_MAX_STORED_REJECTS
        note = (
            f"{job.rows_rejected - kept} more rejected rows were counted but not kept "
            f"(at most {limit} are kept)"
        )
        writer.writerow(["", note, ""])
    text.detach()
    spool.seek(0)
    return spool
