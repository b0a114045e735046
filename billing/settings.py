"""Settings for the billing back office, read from the environment.

Embedded defaults (SQLite file, inline Celery tasks, local media, console
e-mail) make the first run need no services; production sets DATABASE_URL,
SECRET_KEY, ALLOWED_HOSTS and CELERY_BROKER_URL.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from billing.lib.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
if not DEBUG and not env_str("SECRET_KEY"):
    raise ImproperlyConfigured(
        "The environment variable SECRET_KEY is required when DEBUG is off "
        "(for local development, set DEBUG=1 as `make run` does)."
    )
SECRET_KEY = env_str("SECRET_KEY") or "insecure-development-key-only-for-debug"
if not DEBUG and len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters when DEBUG is off.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "billing.apps.StaffAdminConfig",  # django.contrib.admin, sign-ins throttled
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "billing.apps.BillingConfig",
    "accounts",
    "invoices",
    "usage",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # A lost database is a 503, whichever layer below notices it (billing.urls'
    # error handlers answer the rest in each API's own format).
    "billing.api.errors.DatabaseUnavailableMiddleware",
    # The four "Browser" ones (static files, sessions, the signed-in user, flash
    # messages) step aside on API requests, which authenticate by key only
    # (billing/api/middleware.py); the others run on every request.
    "billing.api.middleware.BrowserWhiteNoiseMiddleware",
    "billing.api.body.RequestBodyLimitMiddleware",
    "billing.api.middleware.BrowserSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "billing.api.middleware.BrowserAuthenticationMiddleware",
    "billing.api.middleware.BrowserMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "billing.urls"
WSGI_APPLICATION = "billing.wsgi.application"

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
try:
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("CONN_MAX_AGE", 60))
    }
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A busy timeout lets the inline tasks and the dev server share the file.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # The same backend, with a health check that needs no round trip (billing/db/).
        DATABASES["default"]["ENGINE"] = "billing.db.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The usage report's covering index (INCLUDE columns) is a PostgreSQL feature;
# SQLite builds the same index without them, which is all it needs.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media -------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "var" / "static")))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "var" / "media")))
# Hashed, compressed static files need `collectstatic` first (production does
# it at deploy time); the development server and the tests serve them as they are.
STATIC_MANIFEST = env_bool("STATIC_MANIFEST", not DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if STATIC_MANIFEST
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST

# --- Request limits ---------------------------------------------------------
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_REQUEST_BYTES", 16 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 2000

# --- Security (production values whenever DEBUG is off) ---------------------
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- Cache and staff sign-in throttling ----------------------------------------
# Shared by every server process when CACHE_URL is set (redis://...); otherwise
# each process keeps its own, which multiplies the sign-in allowance by the
# number of processes.
CACHE_URL = env_str("CACHE_URL")
if CACHE_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    }
ADMIN_LOGIN_MAX_FAILURES = env_int("ADMIN_LOGIN_MAX_FAILURES", 5, minimum=1)
ADMIN_LOGIN_WINDOW_SECONDS = env_int("ADMIN_LOGIN_WINDOW_SECONDS", 15 * 60, minimum=1)
ADMIN_LOGIN_LOCKOUT_SECONDS = env_int("ADMIN_LOGIN_LOCKOUT_SECONDS", 15 * 60, minimum=1)
# How many reverse proxies in front of the app append to X-Forwarded-For; 0 takes
# REMOTE_ADDR. Behind a proxy with 0 every client shares the proxy's address.
TRUSTED_PROXIES = env_int("TRUSTED_PROXIES", 0, minimum=0)

# --- API keys -------------------------------------------------------------------
# Seconds a verified API key is trusted without reading it again, per server process
# (billing/api/authentication.py): a revoked, deleted or re-scoped key, or a deleted
# account's, stops working within this bound in every process (at once in the one that
# made the change); expiry is checked on every request. 0 reads the key every time.
API_KEY_CACHE_SECONDS = env_int("API_KEY_CACHE_SECONDS", 5, minimum=0)
# Keys each process remembers (least recently used dropped first).
API_KEY_CACHE_SIZE = env_int("API_KEY_CACHE_SIZE", 1024, minimum=1)
# Invoice reads answered from their stored representations below REST framework
# (invoices/api/fast_reads.py); 0 sends every read through REST framework.
API_FAST_READS = env_bool("API_FAST_READS", True)
# PostgreSQL: those reads prepare their few statements once per connection (psycopg
# prepares what a server-binding cursor runs; Django's own cursors bind on the client and
# never prepare). Turn off behind a pooler in transaction mode that does not keep
# prepared statements.
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)
if DATABASE_PREPARED_STATEMENTS and DATABASES["default"]["ENGINE"] == "billing.db.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 0

# --- E-mail -----------------------------------------------------------------
# Django's own names. Without EMAIL_HOST the console backend prints every message
# (`make run`); with it, SMTP.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "billing@localhost")

# --- Delivery (e-mails, webhooks, the hosted invoice page) -------------------------
# The site's public address, for links in e-mails (the hosted invoice page).
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://localhost:8000")
# Payment reminders, in days after the due date (negative: before it).
INVOICE_REMINDER_DAYS = [
    int(day) for day in env_list("INVOICE_REMINDER_DAYS", ["-3", "1", "7", "14"])
]
# How long a failing e-mail or webhook is retried before it is given up (3 days).
DELIVERY_RETRY_WINDOW_SECONDS = env_int("DELIVERY_RETRY_WINDOW_SECONDS", 3 * 24 * 3600, minimum=60)
# Development and tests only: webhooks to loopback/private addresses and plain http.
WEBHOOKS_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOKS_ALLOW_PRIVATE_TARGETS", False)

# --- Celery -------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND")
# Without a broker every task runs inline, in the caller's process (development and
# tests); `check --deploy` refuses it when DEBUG is off (billing/checks.py).
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
if CELERY_TASK_ALWAYS_EAGER:
    # Inline tasks never reach a broker; naming the in-memory transport keeps
    # kombu from falling back to (and warning about) an AMQP server on localhost.
    CELERY_BROKER_URL = "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# `celery -A billing beat`. The monthly jobs are spaced so that last month's
# usage is billed before its invoices are finalized; issuing runs daily and
# picks the invoices finalized at least two days earlier (the review window).
CELERY_BEAT_SCHEDULE = {
    "bill-last-month": {
        "task": "usage.bill_month",
        "schedule": crontab(minute=15, hour=0, day_of_month=1),
    },
    "finalize-last-month": {
        "task": "invoices.finalize_due",
        "schedule": crontab(minute=0, hour=2, day_of_month=1),
    },
    "issue-finalized": {"task": "invoices.issue_due", "schedule": crontab(minute=0, hour=3)},
    "charge-due": {"task": "invoices.charge_due", "schedule": crontab(minute=0, hour=6)},
    # The outbox: retries and anything whose after-commit task was lost.
    "deliver-notifications": {"task": "delivery.sweep", "schedule": crontab()},
    "send-reminders": {"task": "delivery.send_reminders", "schedule": crontab(minute=0, hour=7)},
    # Usage partitions (PostgreSQL): this month's and the next two, made ahead.
    "usage-partitions": {"task": "usage.ensure_partitions", "schedule": crontab(minute=45, hour=1)},
    "prune-idempotency-keys": {
        "task": "accounts.idempotency_keys_prune",
        "schedule": crontab(minute=30),
    },
}

# --- REST framework -----------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Deny by default: every API view names its key authentication and permissions
    # (V1APIMixin, ThreeScaleViewSet); a view that names none refuses everyone.
    # The schema and its readers are public through SPECTACULAR_SETTINGS.
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "UNAUTHENTICATED_USER": None,
    # Accept is only parsed when it can change the answer (billing/api/negotiation.py).
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "billing.api.negotiation.FastContentNegotiation",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Billing back office API",
    "DESCRIPTION": "3scale-compatible Billing API (/api) and the JSON API (/v1).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The 3scale API's id segment (any text up to a dot, so `abc` gets 3scale's 404 body).
    "PATH_CONVERTER_OVERRIDES": {"threescale_id": int},
    # Two choice sets are named `method`: a payment's, and a recorded payment's.
    "ENUM_NAME_OVERRIDES": {
        "PaymentMethodEnum": "invoices.models.PaymentTransaction.Method",
        "RecordedPaymentMethodEnum": "invoices.services.RECORDED_PAYMENT_METHODS",
    },
}

# --- Billing domain -------------------------------------------------------------
# Invoice number series: "monthly" gives YYYY-MM-NNNNNNNN, "yearly" YYYY-NNNNNNNN.
INVOICE_NUMBERING = env_str("INVOICE_NUMBERING", "monthly")
if INVOICE_NUMBERING not in {"monthly", "yearly"}:
    raise ImproperlyConfigured("INVOICE_NUMBERING must be 'monthly' or 'yearly'.")
DEFAULT_PAYMENT_TERMS_DAYS = env_int("DEFAULT_PAYMENT_TERMS_DAYS", 30, minimum=0)
DEFAULT_CURRENCY = env_str("DEFAULT_CURRENCY", "USD")
PAYMENT_GATEWAY = env_str("PAYMENT_GATEWAY", "invoices.gateways.TestGateway")
CHARGE_RETRY_DAYS = 3
MAX_CHARGE_ATTEMPTS = 3
# Seconds a signed invoice PDF link (GET /api/invoices/{id}.pdf redirects to it) stays valid.
INVOICE_PDF_LINK_MAX_AGE = env_int("INVOICE_PDF_LINK_MAX_AGE", 300, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # API keys travel in query strings (3scale's access_token): no log line may carry one.
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact_keys"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "filters": {
        "redact_keys": {"()": "billing.lib.log_redaction.RedactingFilter"},
        "quiet_font_subset": {"()": "billing.lib.pdf.FontSubsetNoticeFilter"},
    },
    "loggers": {
        # Django's own console handler would print every record a second time
        # (the root handler prints it too): Django's records go through the root only.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # Filters on these loggers too, so every handler (not only ours) sees redacted records.
        "django.server": {"filters": ["redact_keys"], "propagate": True},
        "django.request": {"filters": ["redact_keys"]},
        "django.security": {"filters": ["redact_keys"]},
        "billing": {"filters": ["redact_keys"]},
        "django.db.backends": {"level": "WARNING"},
        "weasyprint": {"level": "WARNING", "filters": ["quiet_font_subset"]},
        "fontTools": {"level": "WARNING"},
        "celery": {"level": "WARNING"},
    },
}
