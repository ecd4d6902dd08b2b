"""The Celery app of the distributed deployment, configured from Django's settings (CELERY_*).

Celery only carries job ids to workers; the job's database row says what to do, so a lost,
repeated or late message is harmless (see collect.jobs.dispatch).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collect.settings")

app = Celery("collect")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["collect.jobs"])
