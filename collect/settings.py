"""Django settings, all read from the environment (PRODUCT.md section 5).

Without DATABASE_URL and CELERY_BROKER_URL this is the embedded deployment: SQLite in WAL
mode and files under COLLECT_DATA_DIR, jobs run by the in-process worker pool.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from corsheaders.defaults import default_headers as default_cors_headers


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DATA_DIR = Path(os.environ.get("COLLECT_DATA_DIR", "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def load_secret_key() -> str:
    """An explicit DJANGO_SECRET_KEY, else one generated once and kept in the data dir."""
    if key := os.environ.get("DJANGO_SECRET_KEY"):
        return key
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = load_secret_key()
DEBUG = env_bool("DJANGO_DEBUG")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "collect.datasets",
    "collect.jobs",
    "collect.imports",
    "collect.uploads",
    "collect.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

# Sign-in throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one account
# from one client, that pair waits for the cool-off; the account stays open to everyone
# else, and the wait ends by itself, so nobody can lock an account out for good.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("COLLECT_SIGNIN_ATTEMPTS", 5))
AXES_COOLOFF_TIME = timedelta(seconds=float(os.environ.get("COLLECT_SIGNIN_COOLOFF", 900)))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "collect.web.views.signed_in_wrong_too_often"
AXES_VERBOSE = False

ROOT_URLCONF = "collect.urls"
CSRF_FAILURE_VIEW = "collect.api.errors.csrf_failure"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
WSGI_APPLICATION = "collect.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def postgres_session_options(options: dict, *, lock_timeout_s: float, lease_s: float) -> dict:
    """Sessions that give up instead of hanging: a lock wait ends after `lock_timeout_s`, a
    transaction left idle (its client froze) after a lease, and a silent server is noticed
    by TCP keepalives within half a minute, not the kernel's two hours."""
    settings = (
        f"-c lock_timeout={int(lock_timeout_s * 1000)} "
        f"-c idle_in_transaction_session_timeout={int(lease_s * 1000)}"
    )
    return {
        "connect_timeout": 5,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        **options,
        "options": f"{options.get('options', '')} {settings}".strip(),
    }


SQLITE_PATH = DATA_DIR / "collect.sqlite3"
DATABASES = {
    "default": dj_database_url.config(default=f"sqlite:///{SQLITE_PATH}", conn_max_age=0),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's backend, with writers served in turn: see collect/db/sqlite/base.py.
    DATABASES["default"]["ENGINE"] = "collect.db.sqlite"
    DATABASES["default"]["OPTIONS"] = {
        # Writers queue for the lock instead of failing; BEGIN IMMEDIATE avoids the
        # read-to-write upgrade deadlock between job threads and web threads.
        "timeout": 60,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["OPTIONS"] = postgres_session_options(
        DATABASES["default"].get("OPTIONS", {}),
        lock_timeout_s=float(os.environ.get("COLLECT_LOCK_TIMEOUT", 5)),
        lease_s=float(os.environ.get("COLLECT_LEASE_SECONDS", 30)),
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
WHITENOISE_USE_FINDERS = True  # serve app and sidecar assets without a collectstatic step

# Uploads go to disk beside their final place, so storing one is a rename, never a copy.
UPLOAD_DIR = DATA_DIR / "uploads"
FILE_UPLOAD_TEMP_DIR = DATA_DIR / "tmp"
FILE_UPLOAD_MAX_MEMORY_SIZE = 0
for directory in (UPLOAD_DIR, FILE_UPLOAD_TEMP_DIR, STATIC_ROOT):
    directory.mkdir(parents=True, exist_ok=True)

COLLECT_MAX_UPLOAD_BYTES = int(os.environ.get("COLLECT_MAX_UPLOAD_BYTES", 10 * 1024**3))
# Unfinished resumable uploads are deleted this long after their last chunk.
COLLECT_UPLOAD_TTL = float(os.environ.get("COLLECT_UPLOAD_TTL", 24 * 3600))
COLLECT_PAUSE_TIMEOUT = float(os.environ.get("COLLECT_PAUSE_TIMEOUT", 300))
COLLECT_WORKERS = int(os.environ.get("COLLECT_WORKERS", 2))
# A batch ends after this many seconds or rows, whichever comes first (PRODUCT.md section 1).
COLLECT_BATCH_SECONDS = float(os.environ.get("COLLECT_BATCH_SECONDS", 0.1))
COLLECT_BATCH_ROWS = int(os.environ.get("COLLECT_BATCH_ROWS", 50_000))
# A running job's owner must renew its lease this often or lose the job to another worker.
COLLECT_LEASE_SECONDS = float(os.environ.get("COLLECT_LEASE_SECONDS", 30))
# A job whose runs crash this many times in a row, at the same point, fails; faults of the
# machinery (a lost connection, a full disk) are retried as long as they last, each wait
# after one at most COLLECT_RETRY_MAX_SECONDS.
# Rejected rows kept with their content for a job; the rest are only counted.
COLLECT_MAX_STORED_REJECTS = int(os.environ.get("COLLECT_MAX_STORED_REJECTS", 10_000))
# Jobs a user may have queued, running or paused at once; a new one past that is a 429.
COLLECT_MAX_ACTIVE_JOBS = int(os.environ.get("COLLECT_MAX_ACTIVE_JOBS", 20))
COLLECT_MAX_CRASHES = int(os.environ.get("COLLECT_MAX_CRASHES", 5))
COLLECT_RETRY_MAX_SECONDS = float(os.environ.get("COLLECT_RETRY_MAX_SECONDS", 60))
COLLECT_SWEEP_SECONDS = float(os.environ.get("COLLECT_SWEEP_SECONDS", 1))
# A finished export's file is kept this long for download, then deleted.
COLLECT_EXPORT_TTL = float(os.environ.get("COLLECT_EXPORT_TTL", 24 * 3600))

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
if CELERY_BROKER_URL.startswith("redis://"):
    # kombu's Redis transport, corrected so that a broker restart cannot end a worker.
    CELERY_BROKER_TRANSPORT = "collect.broker:Transport"
# Collect controls jobs through their database rows, never through Celery's remote control;
# without it there is no pidbox channel, whose failing close also left a worker's channel
# half closed when the broker went away.
CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
# A broker that does not answer (a partition, a frozen host) is given up on in seconds, not
# when TCP does; wake-ups are sent from a thread of their own (collect.jobs.dispatch).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 5,
    "socket_timeout": 10,
    "socket_keepalive": True,
}
CELERY_BROKER_CONNECTION_MAX_RETRIES = None  # keep reconnecting for as long as it takes
# Jobs run on through a broker outage: they need the database, not the broker.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# Celery only wakes workers (the job row is the truth), so its settings favour one job per
# worker slot and no result storage.
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_CONCURRENCY = int(os.environ.get("COLLECT_WORKERS", 2))
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("COLLECT_QUEUE", "collect")
# A queued job whose wake-up message may have been lost (a broker restart) is sent again.
# Never longer than a lease: a frozen worker may have swallowed the message.
COLLECT_REDISPATCH_SECONDS = float(
    os.environ.get("COLLECT_REDISPATCH_SECONDS", COLLECT_LEASE_SECONDS)
)
# "inprocess": the embedded worker pool; "celery": jobs go to `collect worker` processes.
COLLECT_DISPATCH = os.environ.get(
    "COLLECT_DISPATCH", "celery" if CELERY_BROKER_URL else "inprocess"
)

# CORS, so that browser clients on other origins (tus-js-client, Uppy) can use the API.
# Credentials (cookies) are never allowed cross-origin: another site must send a token.
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOWED_ORIGINS = env_list("COLLECT_CORS_ORIGINS", "*")
CORS_ALLOW_ALL_ORIGINS = CORS_ALLOWED_ORIGINS == ["*"]
if CORS_ALLOW_ALL_ORIGINS:
    CORS_ALLOWED_ORIGINS = []
CORS_ALLOW_METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST"]
CORS_ALLOW_HEADERS = [
    *default_cors_headers,
    "tus-resumable",
    "upload-length",
    "upload-defer-length",
    "upload-metadata",
    "upload-offset",
    "upload-checksum",
    "upload-concat",
    "x-http-method-override",
    "x-requested-with",
]
CORS_EXPOSE_HEADERS = [
    "Location",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Defer-Length",
    "Upload-Metadata",
    "Upload-Expires",
    "Upload-Concat",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "Tus-Checksum-Algorithm",
    "Collect-Task-Id",
    "Collect-Task-Url",
    "Collect-Error",
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "collect.api.errors.exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Collect API",
    "DESCRIPTION": (
        "Long-running CSV import and export jobs that can be paused, resumed and "
        "terminated. Authenticate with `Authorization: Token KEY` (see `collect token`)."
    ),
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("COLLECT_LOG_LEVEL", "INFO")},
}

FILE_UPLOAD_HANDLERS = ["collect.uploads.handlers.SizeLimitedUploadHandler"]
