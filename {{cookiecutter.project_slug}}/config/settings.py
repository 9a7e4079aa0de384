"""
Settings for the {{ cookiecutter.project_slug }} site.

Every value that differs between machines is read from the environment (or a
`.env` file beside manage.py) with django-environ; `.env.example` documents each
one. Without a `.env`, the defaults are the production-safe ones.

https://docs.djangoproject.com/en/5.2/ref/settings/
"""

from datetime import timedelta
from pathlib import Path

import environ
from corsheaders.defaults import default_headers

from uploads.conf import DEFAULTS as upload_defaults
from uploads.protocols import tus_headers

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")

# --- Core -------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/settings/#core-settings

SECRET_KEY = env("DJANGO_SECRET_KEY")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "axes",
    "uploads",
    # A demo of uploads.fields.ResumableFileField; remove it when you have your own.
    "documents",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before anything that can answer: a preflight gets its CORS headers first.
    "corsheaders.middleware.CorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The page's language from the browser's Accept-Language (LANGUAGES below).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it answers a locked-out login with its page.
    "axes.middleware.AxesMiddleware",
    # The database down: a 503 page to retry, not a 500 (the upload endpoints answer JSON).
    "uploads.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "config.context_processors.site",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/databases/
# SQLite by default. Several gunicorn workers write to it at once, so it runs in
# WAL mode (readers never wait for the writer) and opens write transactions with
# BEGIN IMMEDIATE, which queues writers instead of failing them with
# "database is locked" when two upgrade a read lock at the same moment.

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;"
            ),
        }
    )
# Keep connections between requests, on SQLite too: a fresh SQLite connection
# runs the PRAGMAs above, and closing the last one checkpoints the WAL into the
# database and deletes it, on nearly every request of a quiet site.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Authentication ---------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/topics/auth/

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "uploads:index"

# --- Login throttling -------------------------------------------------------
# https://django-axes.readthedocs.io/en/latest/4_configuration.html
# After DJANGO_LOGIN_FAILURE_LIMIT failed logins for one username from one
# address, that pair is refused (429) for DJANGO_LOGIN_COOLOFF_MINUTES. By
# pair, not by address alone, so that one office behind one address is not
# locked out by a single user's typos, nor by username alone, so that nobody
# can lock somebody else out from elsewhere. Behind a proxy the address is the
# one the proxy saw (config/proxy.py).

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("DJANGO_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("DJANGO_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "config.proxy.client_ip"
# No banner on every manage.py command: cron mails whatever a job prints.
AXES_VERBOSE = False
LOGOUT_REDIRECT_URL = "home"

# --- Internationalisation ---------------------------------------------------
# https://docs.djangoproject.com/en/5.2/topics/i18n/translation/
# To add a language: add it here, then see the README's "Add a language".

LANGUAGE_CODE = "en-us"
LANGUAGES = [
    ("en", "English"),
    ("fr", "Français"),
    ("de", "Deutsch"),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("DJANGO_TIME_ZONE", default="{{ cookiecutter.time_zone }}")
USE_I18N = True
USE_TZ = True

# --- Static and media files -------------------------------------------------
# https://whitenoise.readthedocs.io/en/stable/django.html
# WhiteNoise serves static files from gunicorn and runserver alike. Media (the
# uploaded files) are never served publicly: uploads.views.download checks the
# owner first.

STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = env.path("DJANGO_MEDIA_ROOT", default=BASE_DIR / "media")
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env(
            "DJANGO_STATICFILES_STORAGE",
            # WhiteNoise's, with ES module imports hashed too (config/staticfiles.py).
            default="config.staticfiles.StaticFilesStorage",
        )
    },
}
# Finished uploads go to S3-compatible object storage (django-storages) instead
# of MEDIA_ROOT when a bucket is named. boto3 finds the credentials itself:
# AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment (or .env), or
# the machine's role. Files stay private: downloads go through the site.
AWS_STORAGE_BUCKET_NAME = env("AWS_STORAGE_BUCKET_NAME", default="")
# Anything but AWS itself (MinIO, Ceph, R2...): its URL. S3 staging uses them too.
AWS_S3_ENDPOINT_URL = env("AWS_S3_ENDPOINT_URL", default=None)
AWS_S3_REGION_NAME = env("AWS_S3_REGION_NAME", default=None)
if AWS_STORAGE_BUCKET_NAME:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": AWS_S3_ENDPOINT_URL,
            "region_name": AWS_S3_REGION_NAME,
            "default_acl": "private",
            "file_overwrite": False,
        },
    }
# Files written into MEDIA_ROOT are readable by the site's user only.
FILE_UPLOAD_PERMISSIONS = 0o640
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o750

# --- Security ---------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/topics/security/
# DJANGO_HTTPS says the site is reached over HTTPS (the default outside DEBUG):
# it turns on the redirect, secure cookies and HSTS together.

HTTPS = env.bool("DJANGO_HTTPS", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("DJANGO_BEHIND_PROXY", default=False) else None
)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=60 * 60 * 24 * 365 if HTTPS else 0)
# Opt-in: both bind every subdomain to HTTPS, and a preloaded domain takes
# months to leave the browsers' lists. Django's deploy checks ask for them
# (security.W005, W021); a site that has not opted in says so by silencing them.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = [
    *([] if SECURE_HSTS_INCLUDE_SUBDOMAINS else ["security.W005"]),
    *([] if SECURE_HSTS_PRELOAD else ["security.W021"]),
]
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# JSON refusals for the upload endpoints, Django's page elsewhere.
CSRF_FAILURE_VIEW = "uploads.access.csrf_failure"

# --- Cross-origin uploads ---------------------------------------------------
# https://github.com/adamchainz/django-cors-headers#configuration
# Off unless DJANGO_CORS_ALLOWED_ORIGINS names origins (https://app.example.com):
# pages on those sites may then upload here with an API token (cookies are not
# sent cross-origin). Only the upload endpoints answer CORS, and they expose the
# headers tus clients read.

CORS_ALLOWED_ORIGINS = env.list("DJANGO_CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/uploads/(tus|chunked|flow|resumable|api)/"
CORS_ALLOW_METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST"]
CORS_ALLOW_HEADERS = [*default_headers, "content-range", *tus_headers.REQUEST_HEADERS]
CORS_EXPOSE_HEADERS = list(tus_headers.RESPONSE_HEADERS)
CORS_PREFLIGHT_MAX_AGE = 86400

# --- Logging ----------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {"django": {"level": env("DJANGO_LOG_LEVEL", default="INFO")}},
}

# --- Uploads ----------------------------------------------------------------
# The uploads app's settings. Each default, its unit and its meaning are written
# once, in uploads/conf.py; numbers and durations are passed on as the
# environment's text, which uploads/conf.py reads, so that a mistake is a
# `manage.py check` error rather than a traceback here. Staging holds the bytes
# of unfinished uploads: it must be one folder that every worker process sees,
# on the same file system as MEDIA_ROOT so that finishing an upload is a
# rename, not a copy.

UPLOADS_STAGING = env.str("UPLOADS_STAGING", default=upload_defaults["STAGING"])
UPLOADS_STAGING_DIR = env.str("UPLOADS_STAGING_DIR", default=upload_defaults["STAGING_DIR"])
UPLOADS_STAGING_PREFIX = env.str(
    "UPLOADS_STAGING_PREFIX", default=upload_defaults["STAGING_PREFIX"]
)
UPLOADS_MAX_BYTES = env.str("UPLOADS_MAX_BYTES", default=upload_defaults["MAX_BYTES"])
UPLOADS_ALLOWED_EXTENSIONS = env.list(
    "UPLOADS_ALLOWED_EXTENSIONS", default=upload_defaults["ALLOWED_EXTENSIONS"]
)
UPLOADS_EXPIRATION = env.str("UPLOADS_EXPIRATION", default=upload_defaults["EXPIRATION"])
UPLOADS_CLIENT = env.str("UPLOADS_CLIENT", default=upload_defaults["CLIENT"])
UPLOADS_CHUNK_SIZE = env.str("UPLOADS_CHUNK_SIZE", default=upload_defaults["CHUNK_SIZE"])
UPLOADS_SIMULTANEOUS_CHUNKS = env.str(
    "UPLOADS_SIMULTANEOUS_CHUNKS", default=upload_defaults["SIMULTANEOUS_CHUNKS"]
)
UPLOADS_MIN_FREE_BYTES = env.str(
    "UPLOADS_MIN_FREE_BYTES", default=upload_defaults["MIN_FREE_BYTES"]
)
UPLOADS_LOCK_TIMEOUT = env.str("UPLOADS_LOCK_TIMEOUT", default=upload_defaults["LOCK_TIMEOUT"])
UPLOADS_AUTH_RECHECK = env.str("UPLOADS_AUTH_RECHECK", default=upload_defaults["AUTH_RECHECK"])
UPLOADS_FINISH_IN_BACKGROUND = env.bool(
    "UPLOADS_FINISH_IN_BACKGROUND", default=upload_defaults["FINISH_IN_BACKGROUND"]
)
UPLOADS_CLEANUP_GRACE = env.str("UPLOADS_CLEANUP_GRACE", default=upload_defaults["CLEANUP_GRACE"])
UPLOADS_UPLOAD_TO = env.str("UPLOADS_UPLOAD_TO", default=upload_defaults["UPLOAD_TO"])
UPLOADS_STORAGE = env.str("UPLOADS_STORAGE", default=upload_defaults["STORAGE"])
UPLOADS_USER_QUOTA = env.str("UPLOADS_USER_QUOTA", default=upload_defaults["USER_QUOTA"])
UPLOADS_MAX_ACTIVE_UPLOADS = env.str(
    "UPLOADS_MAX_ACTIVE_UPLOADS", default=upload_defaults["MAX_ACTIVE_UPLOADS"]
)

# --- Straight into the bucket ----------------------------------------------
# https://uppy.io/docs/aws-s3/
# With UPLOADS_DIRECT and a bucket, browsers upload into the bucket through
# signed requests (Uppy's AwsS3 plugin with companionEndpoint
# "/uploads/companion"); the site signs, checks the limits and keeps the
# record. The bucket needs the CORS rule the README gives.

UPLOADS_DIRECT = env.bool("UPLOADS_DIRECT", default=upload_defaults["DIRECT"])
UPLOADS_DIRECT_PREFIX = env.str("UPLOADS_DIRECT_PREFIX", default=upload_defaults["DIRECT_PREFIX"])
UPLOADS_DIRECT_URL_LIFETIME = env.str(
    "UPLOADS_DIRECT_URL_LIFETIME", default=upload_defaults["DIRECT_URL_LIFETIME"]
)

# --- Downloads behind nginx -------------------------------------------------
# https://nginx.org/en/docs/http/ngx_http_core_module.html#internal
# Set to the internal location of deploy/nginx.conf ("/protected-media/") to
# hand downloads of files in MEDIA_ROOT to nginx, which then serves them and
# their ranges without holding a worker's thread. Off: gunicorn streams them.

UPLOADS_ACCEL_REDIRECT = env.str(
    "UPLOADS_ACCEL_REDIRECT", default=upload_defaults["ACCEL_REDIRECT"]
)

# --- Background work on Celery ----------------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
# With a broker (redis://host:6379/0), Celery workers (`celery -A config
# worker`) finish uploads instead of the web process; without one, nothing is
# sent anywhere. A finish is acknowledged only once done, and one worker
# process takes one job at a time, so a long hash holds up no other job. The
# database row says what is done: no result backend is used.

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
# Where cron or the systemd timers of deploy/ are not used, `celery -A config
# beat` runs cleanup_uploads and verify_uploads at their times instead.
UPLOADS_CELERY_BEAT = env.bool("UPLOADS_CELERY_BEAT", default=upload_defaults["CELERY_BEAT"])
CELERY_BEAT_SCHEDULE = (
    {
        "cleanup-uploads": {"task": "uploads.tasks.cleanup_uploads", "schedule": 60 * 60},
        "verify-uploads": {"task": "uploads.tasks.verify_uploads", "schedule": 7 * 24 * 60 * 60},
    }
    if UPLOADS_CELERY_BEAT
    else {}
)
