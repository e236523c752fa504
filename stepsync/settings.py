"""Settings, all from the environment (django-environ); `.env` is read when present.

Every variable is listed in `.env.example`. Secrets have no defaults here: they come
from the environment or from key files (see stepsync/secrets.py).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

from stepsync import secrets as secret_store

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

try:
    SECRET_KEY = secret_store.read_secret(secret_store.SECRET_KEY)
except secret_store.SecretError as exc:
    raise ImproperlyConfigured(str(exc)) from None

DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Number of reverse proxies in front of the app whose X-Forwarded-For is trusted.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

INSTALLED_APPS = [
    # Django's admin with the MFA-enforcing site (compliance/admin_site.py).
    "compliance.apps.StepSyncAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "stepsync",
    "accounts",
    "compliance",
    "chat",
    "ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "stepsync.middleware.StaticFilesMiddleware",
    "stepsync.middleware.RequestIdMiddleware",
    "ops.middleware.RequestMetricsMiddleware",  # times the whole stack below it
    "ops.middleware.ProbeNoCookiesMiddleware",  # outside sessions/CSRF: strips cookies
    "ops.middleware.MaintenanceMiddleware",  # 503 during rotation/restore
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # async-capable; after auth (user.is_verified)
    "django.contrib.messages.middleware.MessageMiddleware",
    "chat.middleware.SessionTimeoutMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "stepsync.middleware_csp.CSPMiddleware",  # django-csp's, policy built once
    "stepsync.middleware.NoStoreMiddleware",
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # Refuses every login from an IP with too many recent failures (spraying).
    "compliance.login_throttle.IPThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_USER_MODEL = "accounts.User"
ROOT_URLCONF = "stepsync.urls"
WSGI_APPLICATION = "stepsync.wsgi.application"
ASGI_APPLICATION = "stepsync.asgi.application"

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
                "csp.context_processors.nonce",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------
DATABASE_ENCRYPTION_ENABLED = env.bool("DATABASE_ENCRYPTION_ENABLED", default=True)
ENABLE_WAL_MODE = env.bool("ENABLE_WAL_MODE", default=True)
DATABASE_BUSY_TIMEOUT_MS = env.int("DATABASE_BUSY_TIMEOUT_MS", default=5000)
# Set by the ASGI entry point (stepsync.asgi): a thread that waited on SQLite (and
# may hold its write lock) gets the GIL back sooner than Python's default 5 ms.
GIL_SWITCH_INTERVAL_MS = env.float("GIL_SWITCH_INTERVAL_MS", default=0.5)
# Server processes checkpoint the SQLite WAL from a thread this often (seconds),
# instead of inside the commit that fills it (stepsync/db/sqlcipher/checkpointer.py);
# 0 leaves checkpoints to SQLite.
DATABASE_CHECKPOINT_SECONDS = env.float("DATABASE_CHECKPOINT_SECONDS", default=1.0)
# Server processes: threads shared by the views marked @shares_threads (the chat
# message endpoint), instead of a thread per request (stepsync/shared_threads.py);
# 0: a thread per request for every view.
SHARED_REQUEST_THREADS = env.int("SHARED_REQUEST_THREADS", default=2)
# The chat message view's database phases run on the event loop instead of a
# thread when every database is SQLCipher and the shared state lives in it
# (stepsync/loop_database.py); off: always a thread.
INLINE_DATABASE_WORK = env.bool("INLINE_DATABASE_WORK", default=True)
# uvicorn keeps an idle client connection open this long. Longer than the idle
# timeout of clients and proxies (aiohttp 15 s, typical load balancers 60 s): a
# server that closes first races a request sent on the closing connection.
HTTP_KEEP_ALIVE_SECONDS = env.int("HTTP_KEEP_ALIVE_SECONDS", default=75)
DATABASE_MAX_SIZE_MB = env.int("DATABASE_MAX_SIZE_MB", default=1024)
DATABASE_NAME = env.path("DATABASE_NAME", default=BASE_DIR / "var" / "stepsync.db")


def sqlite_options() -> dict[str, str]:
    """Pragmas applied after the key; the key itself never goes into init_command."""
    journal = "WAL" if ENABLE_WAL_MODE else "DELETE"
    pragmas = [
        f"PRAGMA journal_mode={journal}",
        "PRAGMA synchronous=NORMAL",
        f"PRAGMA busy_timeout={DATABASE_BUSY_TIMEOUT_MS}",
        "PRAGMA secure_delete=ON",
    ]
    return {"init_command": ";".join(pragmas), "transaction_mode": "IMMEDIATE"}


# PostgreSQL: connections per process come from a pool of at most this many
# (0: no pool, one persistent connection per thread). Keep servers x workers x
# this under the server's max_connections; a request waits up to the timeout for
# a free connection, then gets a 503.
DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=16)
DATABASE_POOL_TIMEOUT_SECONDS = env.float("DATABASE_POOL_TIMEOUT_SECONDS", default=5.0)
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db("DATABASE_URL")}
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASE_POOL_MAX_SIZE > 0:
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them instead
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": min(2, DATABASE_POOL_MAX_SIZE),
            "max_size": DATABASE_POOL_MAX_SIZE,
            "timeout": DATABASE_POOL_TIMEOUT_SECONDS,
        }
    else:
        DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
else:
    ENGINE = (
        "stepsync.db.sqlcipher"
        if DATABASE_ENCRYPTION_ENABLED
        else "django.db.backends.sqlite3"
    )
    DATABASES = {
        "default": {
            "ENGINE": ENGINE,
            "NAME": str(DATABASE_NAME),
            "OPTIONS": sqlite_options(),
            "CONN_MAX_AGE": env.int("DATABASE_CONN_MAX_AGE", default=600),
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth and sessions ----------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation." + name}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]
LOGIN_URL = "chat:login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
ALLOW_SIGNUP = env.bool("ALLOW_SIGNUP", default=True)
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_IDLE_TIMEOUT_MINUTES = env.int("SESSION_IDLE_TIMEOUT_MINUTES", default=15)
SESSION_ABSOLUTE_TIMEOUT_HOURS = env.int("SESSION_ABSOLUTE_TIMEOUT_HOURS", default=12)
# The stored session lives for the absolute lifetime; chat.middleware ends it sooner
# when idle, so that the user sees why and the expiry is audited (SESSION_EXPIRED).
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_TIMEOUT_HOURS * 3600
SESSION_SAVE_EVERY_REQUEST = False
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# --- Security headers and cookies -----------------------------------------------
SECURE_COOKIES = env.bool("SECURE_COOKIES", default=not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
# The __Host- prefix needs Secure, so plain-http development keeps the plain names.
SESSION_COOKIE_NAME = "__Host-sessionid" if SECURE_COOKIES else "sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken" if SECURE_COOKIES else "csrftoken"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^health/"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if TRUSTED_PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=262144)

# --- Internationalisation and static files --------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=DEBUG)

# --- API ------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "accounts.tokens.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "stepsync.api.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Step Sync ChatBot API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- Chat -----------------------------------------------------------------------
MAX_MESSAGE_CHARS = env.int("MAX_MESSAGE_CHARS", default=2000)
MAX_MESSAGES_PER_SESSION = env.int("MAX_MESSAGES_PER_SESSION", default=20)
MAX_ACTIVE_SESSIONS = env.int("MAX_ACTIVE_SESSIONS", default=1000)
SESSION_TIMEOUT_HOURS = env.float("SESSION_TIMEOUT_HOURS", default=24)
CLEANUP_INTERVAL_MINUTES = env.float("CLEANUP_INTERVAL_MINUTES", default=15)
PHI_SANITIZER_STRICT_MODE = env.bool("PHI_SANITIZER_STRICT_MODE", default=False)
PHI_CRITICAL_TYPES = env.list(
    "PHI_CRITICAL_TYPES", default=["SSN", "CREDIT_CARD", "MRN", "LICENSE", "DEVICE_ID"]
)

# --- LLM ------------------------------------------------------------------------
GROQ_API_KEY = env.str("GROQ_API_KEY", default="")
GROQ_API_BASE_URL = env.str(
    "GROQ_API_BASE_URL", default="https://api.groq.com/openai/v1"
)
GROQ_MODEL = env.str("GROQ_MODEL", default="llama-3.3-70b-versatile")
LLM_MAX_TOKENS = env.int("LLM_MAX_TOKENS", default=512)
LLM_TEMPERATURE = env.float("LLM_TEMPERATURE", default=0.3)
LLM_TIMEOUT_SECONDS = env.float("LLM_TIMEOUT_SECONDS", default=20.0)
LLM_DEADLINE_SECONDS = env.float("LLM_DEADLINE_SECONDS", default=45.0)
LLM_MAX_RETRIES = env.int("LLM_MAX_RETRIES", default=2)
LLM_RETRY_INITIAL_DELAY_SECONDS = env.float(
    "LLM_RETRY_INITIAL_DELAY_SECONDS", default=0.5
)
LLM_RETRY_MAX_DELAY_SECONDS = env.float("LLM_RETRY_MAX_DELAY_SECONDS", default=8.0)
LLM_CONTEXT_TOKENS = env.int("LLM_CONTEXT_TOKENS", default=8000)
CIRCUIT_BREAKER_FAILURE_THRESHOLD = env.int(
    "CIRCUIT_BREAKER_FAILURE_THRESHOLD", default=5
)
CIRCUIT_BREAKER_SUCCESS_THRESHOLD = env.int(
    "CIRCUIT_BREAKER_SUCCESS_THRESHOLD", default=2
)
CIRCUIT_BREAKER_TIMEOUT_SECONDS = env.int("CIRCUIT_BREAKER_TIMEOUT_SECONDS", default=60)
RATE_LIMIT_CALLS_PER_HOUR = env.int("RATE_LIMIT_CALLS_PER_HOUR", default=1000)
RATE_LIMIT_CALLS_PER_USER_HOUR = env.int("RATE_LIMIT_CALLS_PER_USER_HOUR", default=60)
RATE_LIMIT_MESSAGES_PER_MINUTE = env.int("RATE_LIMIT_MESSAGES_PER_MINUTE", default=20)
LLM_MAX_CONCURRENT_PER_USER = env.int("LLM_MAX_CONCURRENT_PER_USER", default=2)
# In-flight LLM calls per worker process (PERFORMANCE.md: keep well under 100).
LLM_MAX_IN_FLIGHT = env.int("LLM_MAX_IN_FLIGHT", default=64)
LLM_MAX_RESPONSE_BYTES = env.int("LLM_MAX_RESPONSE_BYTES", default=262144)
LLM_MAX_REPLY_CHARS = env.int("LLM_MAX_REPLY_CHARS", default=4000)
CIRCUIT_BREAKER_WINDOW_SIZE = env.int("CIRCUIT_BREAKER_WINDOW_SIZE", default=20)
CIRCUIT_BREAKER_MINIMUM_CALLS = env.int("CIRCUIT_BREAKER_MINIMUM_CALLS", default=10)
CIRCUIT_BREAKER_FAILURE_RATE_THRESHOLD = env.float(
    "CIRCUIT_BREAKER_FAILURE_RATE_THRESHOLD", default=50.0
)
CIRCUIT_BREAKER_SLOW_CALL_SECONDS = env.float(
    "CIRCUIT_BREAKER_SLOW_CALL_SECONDS", default=0.0
)
CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS = env.int(
    "CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS", default=1
)

# --- Compliance -----------------------------------------------------------------
DATA_RETENTION_DAYS = env.int("DATA_RETENTION_DAYS", default=90)
AUDIT_RETENTION_YEARS = env.int("AUDIT_RETENTION_YEARS", default=6)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_MINUTES = env.int("AXES_COOLOFF_MINUTES", default=30)
AXES_COOLOFF_TIME = timedelta(minutes=AXES_COOLOFF_MINUTES)
# Failed logins from one client IP, any usernames, before that IP is refused for
# one window (password spraying); 0 turns this off. compliance/login_throttle.py
LOGIN_FAILURES_PER_IP = env.int("LOGIN_FAILURES_PER_IP", default=10)
LOGIN_FAILURES_PER_IP_WINDOW_MINUTES = env.int(
    "LOGIN_FAILURES_PER_IP_WINDOW_MINUTES", default=15
)
# Lock a username after the limit from anywhere, and a username+IP pair as well.
AXES_LOCKOUT_PARAMETERS = ["username", ["username", "ip_address"]]
AXES_USERNAME_CALLABLE = "compliance.lockout.axes_username"
AXES_CLIENT_IP_CALLABLE = "stepsync.net.client_ip_for_axes"
AXES_LOCKOUT_CALLABLE = "compliance.lockout.lockout_response"
AXES_ONLY_ADMIN_SITE = False
AXES_RESET_ON_SUCCESS = True
# Attempts refused during a lockout do not extend it: the cool-off really ends.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# Our audit trail records logins; axes' own access log would duplicate usernames.
AXES_DISABLE_ACCESS_LOG = True
# Staff and compliance officers must pass a TOTP check to use the admin.
MFA_REQUIRED_FOR_STAFF = env.bool("MFA_REQUIRED_FOR_STAFF", default=True)
OTP_TOTP_ISSUER = "Step Sync Admin"
# Where export_audit_head appends the chain head (outside the database).
AUDIT_HEAD_EXPORT_PATH = env.path(
    "AUDIT_HEAD_EXPORT_PATH", default=BASE_DIR / "var" / "audit_heads.jsonl"
)

# --- Operations -----------------------------------------------------------------
HEALTH_CHECK_TOKEN = env.str("HEALTH_CHECK_TOKEN", default="")
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
SENTRY_DSN = env.str("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env.str("SENTRY_ENVIRONMENT", default="production")
# Dotted path of the `str -> str` redactor used for logs and Sentry events.
PHI_REDACTOR = "chat.logging_filter.redact"
LOG_LEVEL = env.str("LOG_LEVEL", default="WARNING").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(
        "LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL"
    )
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured("LOG_FORMAT must be 'json' or 'text'")
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="stepsync@localhost")
ALERT_EMAILS = env.list("ALERT_EMAILS", default=[])
# Encrypted backups (backup_db): where they go and how long they are kept.
BACKUP_DIR = env.path("BACKUP_DIR", default=BASE_DIR / "var" / "backups")
BACKUP_RETENTION_DAYS = env.int("BACKUP_RETENTION_DAYS", default=30)
# While this file exists the app answers 503 and jobs pause (rotation, restore).
MAINTENANCE_LOCK_FILE = env.path(
    "MAINTENANCE_LOCK_FILE", default=BASE_DIR / "var" / "maintenance.lock"
)
# Log files that scan_logs_for_phi checks (and a directory whose *.log it checks).
LOG_FILES = env.list("LOG_FILES", default=[])
LOG_DIR = env.str("LOG_DIR", default="")
# Health probe: how long it waits for the write lock, and the free disk it wants.
HEALTH_DB_BUSY_TIMEOUT_MS = env.int("HEALTH_DB_BUSY_TIMEOUT_MS", default=500)
HEALTH_MIN_FREE_DISK_MB = env.int("HEALTH_MIN_FREE_DISK_MB", default=64)
HEALTH_CACHE_SECONDS = env.int("HEALTH_CACHE_SECONDS", default=5)
# Job runner lease length in seconds (renewed while the runner lives).
JOB_LEASE_SECONDS = env.int("JOB_LEASE_SECONDS", default=90)
# prometheus-client multiprocess directory; `make run` sets a fresh one under var/.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="").strip()
if not PROMETHEUS_MULTIPROC_DIR:
    # prometheus-client goes multiprocess when the variable merely exists, and an
    # empty one means the current directory: counter_<pid>.db files in the checkout.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

# Django's loggers at DEBUG would log SQL with its parameters: never below INFO.
_DJANGO_LOG_LEVEL = "INFO" if LOG_LEVEL == "DEBUG" else LOG_LEVEL
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "stepsync.logging.RequestIdFilter"},
        # Also guards logging.lastResort (see stepsync.logging.phi_filter).
        "phi": {"()": "stepsync.logging.phi_filter"},
    },
    "formatters": {
        "json": {"()": "stepsync.logging.JsonFormatter"},
        "text": {
            "format": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s"
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            # Every handler carries the PHI filter (a test checks each one).
            "filters": ["request_id", "phi"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # Named so that dictConfig removes the handlers Django installs by default (a
    # console handler when DEBUG, mail_admins, django.server's own): none has the
    # PHI filter, and mail_admins mails tracebacks with local variables. Their
    # records go to the root handlers instead. The server (stepsync/serve.py) hands
    # this same dict to uvicorn, so its loggers end up there too.
    "loggers": {
        "django": {"handlers": [], "level": _DJANGO_LOG_LEVEL, "propagate": True},
        "django.server": {
            "handlers": [],
            "level": _DJANGO_LOG_LEVEL,
            "propagate": True,
        },
    },
}
if LOG_DIR:
    from stepsync.logging import file_handler_config

    LOGGING["handlers"]["file"] = file_handler_config(LOG_DIR, LOG_FORMAT)
    LOGGING["root"]["handlers"].append("file")

if SENTRY_DSN:
    from stepsync.sentry import init_sentry

    init_sentry(SENTRY_DSN, environment=SENTRY_ENVIRONMENT)
