"""What Collect does at start, not at import: the data directory and the generated secret key.

Importing collect.settings only computes values. Whatever the settings name on disk is made
here, from the `ready()` of the app below, which Django calls in `django.setup()` — so every
way of starting runs it first: `collect serve`, `collect worker` and the other commands
(collect.cli), the WSGI application, a Celery worker, and pytest-django.
"""

import os
import secrets
from pathlib import Path

from django.apps import AppConfig
from django.conf import settings


class StartupConfig(AppConfig):
    """The `collect` package itself as an app, first in INSTALLED_APPS: its `ready()` runs
    before any other app's, and before any request, job or test."""

    name = "collect"
    label = "collect"
    verbose_name = "Collect"

    def ready(self) -> None:
        prepare_data_dir()


def prepare_data_dir() -> None:
    """The data directory and its parts exist, and a generated secret key is kept in it."""
    for directory in (
        settings.DATA_DIR,
        settings.UPLOAD_DIR,
        settings.FILE_UPLOAD_TEMP_DIR,
        settings.STATIC_ROOT,
    ):
        Path(directory).mkdir(parents=True, exist_ok=True)
    if settings.COLLECT_SECRET_KEY_FILE is not None:  # None: DJANGO_SECRET_KEY is set
        kept = keep_secret_key(Path(settings.COLLECT_SECRET_KEY_FILE), settings.SECRET_KEY)
        if kept != settings.SECRET_KEY:
            settings.SECRET_KEY = kept  # another process kept its key first: use that one


def keep_secret_key(path: Path, key: str) -> str:
    """The key kept in `path`: `key`, written there (0600) if the file does not exist yet.

    Servers and workers that share a fresh data directory may start at once, each with a
    key of its own from the settings; the first to link its file into place wins and the
    others read it. The file appears whole (written under another name, then linked), so a
    reader never sees it half written."""
    if not path.exists():
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            with open(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
                file.write(key)
            draft.chmod(0o600)  # whatever the umask
            os.link(draft, path)
        except FileExistsError:
            pass  # another process was first
        finally:
            draft.unlink(missing_ok=True)
    return path.read_text().strip()
