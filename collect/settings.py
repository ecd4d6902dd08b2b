"""Django settings, all read from the environment (PRODUCT.md section 5).

Without DATABASE_URL and CELERY_BROKER_URL this is the embedded deployment: SQLite in WAL
mode and files under COLLECT_DATA_DIR, jobs run by the in-process worker pool.

Every variable is read once, through `env` (django-environ), with its type and its default
beside the setting it makes; README.md's settings table lists them all.

Importing this module only computes values: it creates no directory and writes no file.
What the settings name on disk is made at start, in `django.setup()`, by collect.startup
(the `collect` app's `ready()`, first in INSTALLED_APPS): the data directory and its parts,
and the generated secret key. So the key here is an explicit DJANGO_SECRET_KEY, else the
one kept in the data directory, else — a fresh data directory — a new one, which start-up
then keeps there (mode 0600) for every later start, or exchanges for the one that another
process sharing the directory kept first. Tests start Django the same way (pytest-django
calls `django.setup()`), so a test run gets its data directory and key like a server.
"""

import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
import environ
from corsheaders.defaults import default_headers as default_cors_headers
from django.core.exceptions import ImproperlyConfigured


class Env(environ.Env):
    """django-environ, with values taken as they are written.

    - A value that begins with "$" is the value, not the name of another variable to read
      (django-environ 0.14 has no switch for that): a secret key may begin with "$".
    - Numbers are Python's: django-environ's float drops every character but digits, "," and
      "." (so "1e3" would be 13.0); Python's float() reads "1e3" and refuses "5s".
    - List items are stripped and empty ones dropped ("a, b," is ["a", "b"]).
    """

    # Any: what a value becomes depends on `cast` (a type, a callable, a list of them…).
    def get_value(
        self,
        var: str,
        cast: Any = None,
        default: Any = environ.Env.NOTSET,
        parse_default: bool = False,
    ) -> Any:
        value = self.ENVIRON.get(f"{self.prefix}{var}")
        try:
            if isinstance(value, str) and value.startswith("$"):
                return self.parse_value(value, cast)
            return super().get_value(var, cast=cast, default=default, parse_default=parse_default)
        except ValueError as error:  # said in one line by the command, not as a traceback
            raise ImproperlyConfigured(f"{var}={value!r} cannot be read: {error}") from None

    @classmethod
    def parse_value(cls, value: str, cast: Any) -> Any:
        if cast is float:
            return float(value)
        if cast is list:
            return [item.strip() for item in value.split(",") if item.strip()]
        return super().parse_value(value, cast)


env = Env()

DATA_DIR = Path(env.str("COLLECT_DATA_DIR", default="var")).resolve()


def _kept_secret_key(path: Path) -> str:
    """The generated key kept in `path`, or a new one for start-up to keep there."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return secrets.token_urlsafe(50)


# An explicit DJANGO_SECRET_KEY, else one generated once and kept in the data dir (above).
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
COLLECT_SECRET_KEY_FILE = None if SECRET_KEY else DATA_DIR / "secret_key"
if COLLECT_SECRET_KEY_FILE is not None:
    SECRET_KEY = _kept_secret_key(COLLECT_SECRET_KEY_FILE)
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "collect.startup.StartupConfig",  # first: makes the data directory (collect.startup)
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
    "collect.exports",
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
AXES_FAILURE_LIMIT = env.int("COLLECT_SIGNIN_ATTEMPTS", default=5)
AXES_COOLOFF_TIME = timedelta(seconds=env.float("COLLECT_SIGNIN_COOLOFF", default=900.0))
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


def postgres_session_options(
    options: dict[str, Any], *, lock_timeout_s: float, lease_s: float
) -> dict[str, Any]:
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


# A running job's owner must renew its lease this often or lose the job to another worker.
COLLECT_LEASE_SECONDS = env.float("COLLECT_LEASE_SECONDS", default=30.0)
# PostgreSQL: a statement waits this long for a lock, then fails and its job is retried.
COLLECT_LOCK_TIMEOUT = env.float("COLLECT_LOCK_TIMEOUT", default=5.0)

SQLITE_PATH = DATA_DIR / "collect.sqlite3"
try:
    DATABASES = {
        "default": dj_database_url.parse(
            env.str("DATABASE_URL", default=f"sqlite:///{SQLITE_PATH}"), conn_max_age=0
        ),
    }
except ValueError as error:  # dj_database_url's UnknownSchemeError among them
    raise ImproperlyConfigured(f"DATABASE_URL cannot be read: {error}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's backend, with writers served in turn: see collect/db/sqlite/base.py.
    DATABASES["default"]["ENGINE"] = "collect.db.sqlite"
    DATABASES["default"]["OPTIONS"] = {
        # Writers queue for the lock instead of failing; BEGIN IMMEDIATE avoids the
        # read-to-write upgrade deadlock between job threads and web threads.
        "timeout": 60,
        "transaction_mode": "IMMEDIATE",
        # The sweeper copies the WAL into the database every second (collect.db), off the
        # commit of a batch, which SQLite's own checkpoint every 1000 pages made 60 ms
        # longer; 10000 pages is the bound where no sweeper runs (a command, a test).
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=10000;"
        ),
    }
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
    # Kept, not one per request: opening one (its pragmas, Django's SQL functions) took
    # most of a status read's time, in the process that also runs the jobs.
    DATABASES["default"]["CONN_MAX_AGE"] = 60
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["OPTIONS"] = postgres_session_options(
        DATABASES["default"].get("OPTIONS", {}),
        lock_timeout_s=COLLECT_LOCK_TIMEOUT,
        lease_s=COLLECT_LEASE_SECONDS,
    )
    # Kept, not one per request: connecting took a third of a status read's time in the web
    # process (and a new backend's start-up in PostgreSQL's). Kept a minute, and checked
    # before a request uses it again, so one broken by a restart is replaced.
    DATABASES["default"]["CONN_MAX_AGE"] = 60
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

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
# These directories are made at start (collect.startup), not here.
UPLOAD_DIR = DATA_DIR / "uploads"
FILE_UPLOAD_TEMP_DIR = DATA_DIR / "tmp"
FILE_UPLOAD_MAX_MEMORY_SIZE = 0

# Object storage (PRODUCT.md section 4): with a bucket, uploaded files and export files
# live there (under uploads/ and exports/), read by ranges; credentials are boto3's own
# (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, or an instance role).
# Without one, they stay under UPLOAD_DIR and DATA_DIR/exports.
COLLECT_S3_BUCKET = env.str("COLLECT_S3_BUCKET", default="")
COLLECT_S3_ENDPOINT_URL = env.str("COLLECT_S3_ENDPOINT_URL", default="")
_S3_OPTIONS: dict[str, Any] = {
    "bucket_name": COLLECT_S3_BUCKET,
    "endpoint_url": COLLECT_S3_ENDPOINT_URL or None,
    "location": "uploads",
    "file_overwrite": True,  # names are job ids: never a name Django should change
    "default_acl": None,
    "querystring_expire": 300,
}
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "uploads": (
        {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": _S3_OPTIONS}
        if COLLECT_S3_BUCKET
        else {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": UPLOAD_DIR, "file_permissions_mode": 0o600},
        }
    ),
    "exports": (
        {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {**_S3_OPTIONS, "location": "exports"},
        }
        if COLLECT_S3_BUCKET
        else {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": DATA_DIR / "exports", "file_permissions_mode": 0o600},
        }
    ),
}

COLLECT_MAX_UPLOAD_BYTES = env.int("COLLECT_MAX_UPLOAD_BYTES", default=10 * 1024**3)
# Unfinished resumable uploads are deleted this long after their last chunk.
COLLECT_UPLOAD_TTL = env.float("COLLECT_UPLOAD_TTL", default=24 * 3600.0)
COLLECT_PAUSE_TIMEOUT = env.float("COLLECT_PAUSE_TIMEOUT", default=300.0)
# Embedded: the in-process worker threads; distributed: a `collect worker`'s concurrency.
COLLECT_WORKERS = env.int("COLLECT_WORKERS", default=2)
# A batch ends after this many seconds or rows, whichever comes first (PRODUCT.md section 1),
# or as soon as a pause or terminate comes in, which the run looks for every
# COLLECT_WATCH_SECONDS (collect.jobs.watch). Each batch's commit and restart idles the
# database for ~10-20 ms: batches of 0.1 s cost an import a fifth of its rate.
COLLECT_BATCH_SECONDS = env.float("COLLECT_BATCH_SECONDS", default=0.4)
COLLECT_BATCH_ROWS = env.int("COLLECT_BATCH_ROWS", default=500_000)
COLLECT_WATCH_SECONDS = env.float("COLLECT_WATCH_SECONDS", default=0.025)
# Rejected rows kept with their content for a job; the rest are only counted.
COLLECT_MAX_STORED_REJECTS = env.int("COLLECT_MAX_STORED_REJECTS", default=10_000)
# Jobs a user may have queued, running or paused at once; a new one past that is a 429.
COLLECT_MAX_ACTIVE_JOBS = env.int("COLLECT_MAX_ACTIVE_JOBS", default=20)
# A job whose runs crash this many times in a row, at the same point, fails; faults of the
# machinery (a lost connection, a full disk) are retried as long as they last, each wait
# after one at most COLLECT_RETRY_MAX_SECONDS.
COLLECT_MAX_CRASHES = env.int("COLLECT_MAX_CRASHES", default=5)
COLLECT_RETRY_MAX_SECONDS = env.float("COLLECT_RETRY_MAX_SECONDS", default=60.0)
COLLECT_SWEEP_SECONDS = env.float("COLLECT_SWEEP_SECONDS", default=1.0)
# A finished export's file is kept this long for download, then deleted.
COLLECT_EXPORT_TTL = env.float("COLLECT_EXPORT_TTL", default=24 * 3600.0)
# Where records live (collect.datasets.stores): the store of the database, unless told.
COLLECT_SEGMENT_STORE = env.str(
    "COLLECT_SEGMENT_STORE",
    default=(
        "collect.datasets.stores.postgres.PostgresStore"
        if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
        else "collect.datasets.stores.sqlite.SqliteStore"
    ),
)

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
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
# Celery's Django fixup closes the database connections around every task unless this is
# set; a job's own run then opened one first (15 of the 25 ms from a job's creation to its
# start). Django's CONN_MAX_AGE and health checks decide instead (collect.jobs.tasks).
CELERY_DB_REUSE_MAX = 1_000_000_000
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_CONCURRENCY = COLLECT_WORKERS
# `collect worker` gives way to requests on a shared machine (collect.jobs.priority).
COLLECT_WORKER_NICE = env.int("COLLECT_WORKER_NICE", default=10)
CELERY_TASK_DEFAULT_QUEUE = env.str("COLLECT_QUEUE", default="collect")
# A queued job whose wake-up message may have been lost (a broker restart) is sent again.
# Never longer than a lease: a frozen worker may have swallowed the message.
COLLECT_REDISPATCH_SECONDS = env.float("COLLECT_REDISPATCH_SECONDS", default=COLLECT_LEASE_SECONDS)
# "inprocess": the embedded worker pool; "celery": jobs go to `collect worker` processes.
COLLECT_DISPATCH = env.str(
    "COLLECT_DISPATCH", default="celery" if CELERY_BROKER_URL else "inprocess"
)

# GET /metrics answers only with `Authorization: Bearer <this>` when it is set.
COLLECT_METRICS_TOKEN = env.str("COLLECT_METRICS_TOKEN", default="")
# `collect worker` serves its own process's metrics (batch durations) on this port; 0: none.
COLLECT_WORKER_METRICS_PORT = env.int("COLLECT_WORKER_METRICS_PORT", default=0)

# CORS, so that browser clients on other origins (tus-js-client, Uppy) can use the API.
# Credentials (cookies) are never allowed cross-origin: another site must send a token.
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOWED_ORIGINS = env.list("COLLECT_CORS_ORIGINS", default=["*"])
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
    # Request bodies as components of their own, so that a file field is a binary upload
    # (a file picker in /docs/), not the URL it would be in a response.
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "collect.api.schema.add_links_and_headers",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("COLLECT_LOG_LEVEL", default="INFO")},
}

FILE_UPLOAD_HANDLERS = ["collect.uploads.handlers.SizeLimitedUploadHandler"]
