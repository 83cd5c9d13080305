"""Settings for the Remix dashboard, read from the environment (see .env.example)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from environs import Env

from remixsite.keyfile import DEFAULT_PATH as DEMO_KEY_FILE

BASE_DIR = Path(__file__).resolve().parent.parent

env = Env()
env.read_env(BASE_DIR / ".env", recurse=False)  # optional; real environment variables win


def secret(name: str, default: str = "") -> str:
    """A secret from NAME, or from the file named in NAME_FILE (which must exist)."""
    path = env.str(f"{name}_FILE", "")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path} cannot be read: {exc}") from exc
    return env.str(name, default)


DEBUG = env.bool("DEBUG", False)
SECRET_KEY = secret("SECRET_KEY")
_key_given = "SECRET_KEY" in os.environ or "SECRET_KEY_FILE" in os.environ
if not _key_given and DEMO_KEY_FILE.is_file():
    # The key `make run` made for the demo: manage.py beside it works without DEBUG=1. Only
    # when neither is set at all: a set-but-empty SECRET_KEY (an unfilled .env line) refuses.
    SECRET_KEY = DEMO_KEY_FILE.read_text().strip()
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off (see .env.example), "
            f"or run `make run` once to create {DEMO_KEY_FILE}"
        )
    SECRET_KEY = "insecure-development-key-only-used-with-DEBUG-on"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env.str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_tasks_db",
    "axes",
    "jobs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Compresses HTML last, after every middleware below wrote the body (static files never
    # get here: WhiteNoise above answers them).
    "remixsite.compression.HtmlGZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # ETags from the content for pages; the polls decide theirs before rendering
    # (jobs/views/polls.py), and this only compares them.
    "django.middleware.http.ConditionalGetMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",  # every page needs a login by default
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # last: it answers a locked-out log-in itself
]

ROOT_URLCONF = "remixsite.urls"
WSGI_APPLICATION = "remixsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
                "jobs.context_processors.notices",
            ],
        },
    },
]

# SQLite's file lives in var/, which a fresh clone does not have yet: every command
# (including `check --deploy`) must be able to open the database.
(BASE_DIR / "var").mkdir(exist_ok=True)

DATABASES = {
    "default": env.dj_db_url(
        "DATABASE_URL",
        f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}",
        # Each web and tracker thread keeps its connection (a new one per job cost more than
        # the job: bench/p5_worker_scale.py); health checks replace a broken one.
        conn_max_age=env.int("CONN_MAX_AGE", 60),
        conn_health_checks=True,
    ),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The same for a SQLite file named in DATABASE_URL: SQLite creates the file, not its folder.
    _sqlite_name = str(DATABASES["default"]["NAME"])
    if _sqlite_name and _sqlite_name != ":memory:" and not _sqlite_name.startswith("file:"):
        Path(_sqlite_name).parent.mkdir(parents=True, exist_ok=True)
    # WAL + a busy timeout let the web server and both workers share one SQLite file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
        }
    )
    # A file, not :memory:, so live-server, tracker threads and subprocesses see the same data;
    # named per process so concurrent test runs on one machine do not share it.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-{os.getpid()}.sqlite3")}
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "jobs:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Absolute, whatever the environment says: the media view and the archiver compare paths.
MEDIA_ROOT = (BASE_DIR / env.str("MEDIA_ROOT", str(BASE_DIR / "var" / "media"))).resolve()
MEDIA_URL = "media/"  # served by jobs.views.media, behind login, with Range support
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Manifest + compression when DEBUG is off; plain storage while developing.
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage",
    },
}


def s3_storage(
    *,
    bucket: str,
    endpoint_url: str = "",
    region: str = "",
    addressing_style: str = "",
    access_key: str = "",
    secret_key: str = "",
    expire: int = 600,
) -> dict[str, Any]:
    """The archive's storage in an S3-compatible bucket (django-storages' S3Storage, boto3).

    Private objects, read through presigned URLs. Uploads are multipart in 8 MiB parts, sent one
    at a time from the file on disk (jobs/lib/s3.py): boto3's defaults raised a 100 MB archive's
    peak RSS by 105 MB, this by about 1 MB (bench/p6_download_memory.py). Empty credentials
    leave them to boto3's own chain (AWS_PROFILE, an instance or pod role).
    """
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    part = 8 * 1024 * 1024  # 10,000 parts (S3's limit) of it: 78 GiB, far above MAX_ASSET_BYTES
    return {
        "BACKEND": "jobs.lib.s3.ArchiveS3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url or None,
            "region_name": region or None,
            "access_key": access_key or None,
            "secret_key": secret_key or None,
            "default_acl": None,  # the bucket's own (private): every read is presigned
            "querystring_auth": True,
            "querystring_expire": expire,
            "file_overwrite": False,  # reference images share names: never replace one
            # Archived names are never reused (a folder per attempt): a browser may keep them.
            "object_parameters": {"CacheControl": "private, max-age=86400"},
            "max_memory_size": 1024 * 1024,  # a read (zip, share) spools to disk beyond this
            # One part at a time: with threads, s3transfer buffered parts in memory even when
            # reading from a path (+11.5 MB for 4 threads); the tracker's own threads already
            # upload several videos at once.
            "transfer_config": TransferConfig(
                multipart_threshold=part, multipart_chunksize=part, use_threads=False
            ),
            "client_config": Config(
                s3={"addressing_style": addressing_style or "auto"},
                signature_version="s3v4",
                connect_timeout=10,
                read_timeout=60,
                retries={"mode": "standard", "max_attempts": 3},
            ),
        },
    }


def s3_origins(*, bucket: str, endpoint_url: str, region: str, addressing_style: str) -> list[str]:
    """Where presigned URLs point, for the CSP: <video> and <img> follow the media view's
    redirect there (no CORS needed for playing or showing; CSP checks the redirect)."""
    if endpoint_url:
        parts = urlsplit(endpoint_url)
        hosts = [parts.netloc]
        scheme = parts.scheme or "https"
    else:  # AWS: regional, and the global name boto3 may use for us-east-1
        hosts = [f"s3.{region}.amazonaws.com"] if region else []
        hosts += ["s3.amazonaws.com"] if region in ("", "us-east-1") else []
        scheme = "https"
    if addressing_style == "path":
        return [f"{scheme}://{host}" for host in hosts]
    return [f"{scheme}://{bucket}.{host}" for host in hosts]


# Archived videos: on this machine's disk under MEDIA_ROOT (the default), or in an S3-compatible
# bucket (AWS S3, MinIO, Ceph RGW, …): README "Configuration" and docs/deploy.md. MEDIA_ROOT
# still holds downloads in progress (.partial), which are verified there before the upload.
ARCHIVE_STORAGE = env.str("ARCHIVE_STORAGE", "local").strip().lower()
ARCHIVE_MEDIA_ORIGINS: list[str] = []
if ARCHIVE_STORAGE == "s3":
    _s3 = {
        "bucket": env.str("AWS_STORAGE_BUCKET_NAME", ""),
        "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", "").rstrip("/"),
        "region": env.str("AWS_S3_REGION_NAME", ""),
    }
    if not _s3["bucket"]:
        raise ImproperlyConfigured("ARCHIVE_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME")
    # MinIO and Ceph are usually reached by path (http://minio:9000/bucket/key); AWS by name.
    _style = env.str("AWS_S3_ADDRESSING_STYLE", "path" if _s3["endpoint_url"] else "virtual")
    STORAGES["default"] = s3_storage(
        **_s3,
        addressing_style=_style,
        access_key=secret("AWS_ACCESS_KEY_ID"),
        secret_key=secret("AWS_SECRET_ACCESS_KEY"),
        expire=env.int("AWS_QUERYSTRING_EXPIRE", 600),
    )
    ARCHIVE_MEDIA_ORIGINS = env.list(
        "AWS_S3_MEDIA_ORIGINS", s3_origins(**_s3, addressing_style=_style)
    )
elif ARCHIVE_STORAGE != "local":
    raise ImproperlyConfigured(f"ARCHIVE_STORAGE={ARCHIVE_STORAGE} is neither local nor s3")

TASKS = {
    "default": {
        "BACKEND": env.str("TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}

# Security: strict by default, relaxed only by DEBUG or explicit env.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:", *ARCHIVE_MEDIA_ORIGINS],
    "media-src": [CSP.SELF, *ARCHIVE_MEDIA_ORIGINS],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", False)  # usually done by the proxy
BEHIND_PROXY = env.bool("BEHIND_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_PROXY else None
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# Login throttling (django-axes, on our log-in form and the admin's): after LOGIN_FAILURE_LIMIT
# failures for one username from one address, or from one address across usernames (password
# spraying), log-ins from there are refused for LOGIN_FAILURE_WINDOW_SECONDS. Attempts made
# while locked out do not extend it, and older failures are cleaned away.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_FAILURE_WINDOW_SECONDS = env.int("LOGIN_FAILURE_WINDOW_SECONDS", 900)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=LOGIN_FAILURE_WINDOW_SECONDS)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True  # only the account's own failures from that address (throttle.py)
AXES_HANDLER = "remixsite.throttle.ScopedResetHandler"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# django-ipware is not installed, so axes would use REMOTE_ADDR: the proxy's, behind one.
AXES_CLIENT_IP_CALLABLE = "remixsite.throttle.client_ip"

MAILERS = {
    "default": {
        "BACKEND": env.str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
    }
}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", "remix@localhost")
NOTIFY_BY_EMAIL = env.bool("NOTIFY_BY_EMAIL", False)

# The default provider seeded by `manage.py seed_demo` (the bundled simulator).
PROVIDER_DEFAULT_NAME = env.str("PROVIDER_DEFAULT_NAME", "Local simulator")
PROVIDER_DEFAULT_BASE_URL = env.str("PROVIDER_DEFAULT_BASE_URL", "http://127.0.0.1:8001/v1")
PROVIDER_DEFAULT_API_KEY_ENV = env.str("PROVIDER_DEFAULT_API_KEY_ENV", "SIMULATOR_API_KEY")
PROVIDER_TIMEOUT_SECONDS = env.float("PROVIDER_TIMEOUT_SECONDS", 30)
PROVIDER_MAX_RETRIES = env.int("PROVIDER_MAX_RETRIES", 2)
# A provider is untrusted input: every answer is bounded (docs/security.md lists them all).
# Only these environment variables may hold a provider's key (never SECRET_KEY & co.).
PROVIDER_KEY_PREFIX = "PROVIDER_KEY_"
PROVIDER_KEY_VARIABLES: list[str] = env.list("PROVIDER_KEY_VARIABLES", ["SIMULATOR_API_KEY"])
# Whole-request deadline for API calls (a body trickling a byte at a time included).
PROVIDER_DEADLINE_SECONDS = env.float("PROVIDER_DEADLINE_SECONDS", 60)
PROVIDER_JSON_MAX_BYTES = env.int("PROVIDER_JSON_MAX_BYTES", 1_048_576)  # one Video object
PROVIDER_LIST_MAX_BYTES = env.int("PROVIDER_LIST_MAX_BYTES", 8_388_608)  # one page of a list
PROVIDER_MAX_REDIRECTS = env.int("PROVIDER_MAX_REDIRECTS", 3)  # content downloads only
SYNC_MAX_PAGES = env.int("SYNC_MAX_PAGES", 1000)
# Archives: at most this large; a download may take 60 s plus 1 s per ASSET_MIN_RATE bytes.
MAX_ASSET_BYTES = env.int("MAX_ASSET_BYTES", 2_147_483_648)
ASSET_MIN_RATE = env.int("ASSET_MIN_RATE", 262_144)
ARCHIVE_MAX_ATTEMPTS = env.int("ARCHIVE_MAX_ATTEMPTS", 5)

# Tracking loop (manage.py track_videos).
# An idle tracker looks for due work this often: one indexed query (bench/p4_staleness.py).
TRACKER_IDLE_SECONDS = env.float("TRACKER_IDLE_SECONDS", 0.25)
# Status reads in flight: sized at run time from the reads due and their measured latency
# (Little's law), between these bounds; each thread keeps a DB connection (docs/deploy.md).
TRACKER_THREADS = env.int("TRACKER_THREADS", 64)
TRACKER_MIN_THREADS = env.int("TRACKER_MIN_THREADS", 8)
# Downloads run on threads of their own, so they never hold one a status read needs.
TRACKER_DOWNLOAD_THREADS = env.int("TRACKER_DOWNLOAD_THREADS", 4)
TRACKER_LEASE_SECONDS = env.int("TRACKER_LEASE_SECONDS", 120)
# A create whose answer was lost and that is not in the provider's job list this long after
# it was sent (or on a second look) was not made, and is sent again (jobs/submission.py).
SUBMIT_LOOKUP_SETTLE_SECONDS = env.float("SUBMIT_LOOKUP_SETTLE_SECONDS", 30)
POLL_MIN_SECONDS = env.float("POLL_MIN_SECONDS", 1.0)
POLL_MAX_SECONDS = env.float("POLL_MAX_SECONDS", 30.0)
POLL_WEBHOOK_SECONDS = env.float("POLL_WEBHOOK_SECONDS", 60.0)
# Browser refresh while something is in flight; an unchanged tick is a ~330 B 304 (bench/p3).
TABLE_POLL_SECONDS = env.float("TABLE_POLL_SECONDS", 1.0)
TABLE_PAGE_SIZE = env.int("TABLE_PAGE_SIZE", 25)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        # One handler: Django's own for django.tasks would print every task line twice.
        "django.tasks": {"handlers": ["console"], "propagate": False},
    },
}

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
