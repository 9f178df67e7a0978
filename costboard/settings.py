"""Costboard settings: one file, read from the environment through small typed helpers."""

import ipaddress
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from costboard import embedded_postgres

BASE_DIR = Path(__file__).resolve().parent.parent
# An empty COSTBOARD_VAR_DIR counts as unset: "" would be the working directory.
VAR_DIR = Path(os.environ.get("COSTBOARD_VAR_DIR") or BASE_DIR / "var")


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if not raw:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


UNSAFE_SECRET = "costboard-insecure-development-secret-key-change-me"  # noqa: S105
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", UNSAFE_SECRET)
# Production (DEBUG off) must never sign sessions with a key that is in the source code.
if not DEBUG and SECRET_KEY == UNSAFE_SECRET and not env_bool("COSTBOARD_ALLOW_UNSAFE_SECRET"):
    raise ImproperlyConfigured(
        "SECRET_KEY is unset or unsafe; set SECRET_KEY (or DEBUG=1 locally)."
    )
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "core",
    "tenants",
    "audit",
    "pricing",
    "ingest",
    "rollups",
    "dashboard",
    "alerts",
    "budgets",
    "anomalies",
    "billing",
    "prices",
    "metrics",
    "otlp",
    "tenant_settings",
    "pipeline",
    "demo",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tenants.middleware.TenantMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.storage.DatabaseUnavailableMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "costboard.urls"
WSGI_APPLICATION = "costboard.wsgi.application"

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

# With DATABASE_URL unset: the embedded PostgreSQL server of VAR_DIR, started here if it is not
# running (costboard/embedded_postgres.py), so manage.py, the web server, Celery and the tests all
# run on PostgreSQL; attaching to a running server costs about a millisecond.
DATABASE_URL = env_str("DATABASE_URL") or embedded_postgres.settings_url(VAR_DIR)
DATABASES: dict[str, Any] = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
# django-prometheus's subclass of the same backend: adds the django_db_* metrics.
DATABASES["default"]["ENGINE"] = DATABASES["default"]["ENGINE"].replace(
    "django.db.backends.", "django_prometheus.db.backends."
)
DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME") or None}
# DATABASE_POOLED=1: DATABASE_URL is a PgBouncer in transaction pooling mode, where each
# transaction may run on another server connection, so nothing may outlive one: no named
# prepared statements (psycopg prepares a query run 5 times; ingest asks for it, see
# core.pooling), no server-side cursors (QuerySet.iterator() opens a named cursor, and outside
# a transaction a WITH HOLD one). Advisory locks are transaction-level and SETs are SET LOCAL
# throughout; README "Running several nodes" lists what a pooler must not see.
DATABASE_POOLED = env_bool("DATABASE_POOLED")
if DATABASE_POOLED:
    DATABASES["default"]["OPTIONS"] = {"prepare_threshold": None}
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The optional read replica (core/replica.py): pages, the usage API and exports read from it
# while it lags at most REPLICA_MAX_LAG_SECONDS; everything else uses the primary.
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL")
REPLICA_MAX_LAG_SECONDS = env_int("REPLICA_MAX_LAG_SECONDS", 30)
REPLICA_CHECK_SECONDS = env_int("REPLICA_CHECK_SECONDS", 1)  # how often a process measures lag
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = {
        **dj_database_url.parse(DATABASE_REPLICA_URL, conn_max_age=60),
        "ENGINE": DATABASES["default"]["ENGINE"],
        "OPTIONS": {"connect_timeout": 2},  # a dead replica must not hold a page for long
        "TEST": {"MIRROR": "default"},
    }
DATABASE_ROUTERS = ["core.replica.ReplicaRouter"]
MIDDLEWARE.append("core.replica.FreshAfterWriteMiddleware")

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    # Shared by the web server, the worker and beat of one var directory, as Redis would be:
    # the rollup debounce flag the worker clears, the /metrics snapshot, rate-limit counters.
    # A per-process cache would keep a flag set in the web process that only the worker clears.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT") or VAR_DIR / "staticfiles")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "dashboard.staticfinder.PlotlyFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    # An API key (`Authorization: Bearer`), else the session; the per-key rate limit.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["tenants.auth.ApiKeyRateThrottle"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Costboard API",
    "DESCRIPTION": "Ingest LLM usage events and read spend, usage and budgets.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from our own static files: /api/docs/ works with no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# Celery: Redis in production; with REDIS_URL unset an embedded filesystem broker that a real
# worker process still consumes (never eager mode, so the demo behaves like production).
CELERY_BROKER_DIR = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 3600}
else:
    (CELERY_BROKER_DIR / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR),
        "data_folder_out": str(CELERY_BROKER_DIR),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "store_processed": False,
        # Exchange tables; kombu's default is "control" in the working directory.
        "control_folder": str(CELERY_BROKER_DIR / "control"),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 1800  # the broker's visibility timeout (3600 s) is longer than this
CELERY_TIMEZONE = "UTC"
# Beat's record of when each schedule entry last ran: under var/, not the working directory.
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# How long a beat that stopped renewing its lock (a dead node) keeps standbys from sending.
BEAT_LOCK_SECONDS = env_int("BEAT_LOCK_SECONDS", 30)

# Ingest
INGEST_MAX_BODY_BYTES = 5 * 1024 * 1024
INGEST_MAX_EVENTS = 1000
INGEST_RATE_LIMIT_PER_MINUTE = env_int("INGEST_RATE_LIMIT_PER_MINUTE", 120_000)
API_KEY_CACHE_SECONDS = env_int("API_KEY_CACHE_SECONDS", 5)
DATA_UPLOAD_MAX_MEMORY_SIZE = INGEST_MAX_BODY_BYTES + 1024

# Rollups
# A merge costs about one upsert per end user it saw, however many events it holds: 5 s
# keeps freshness p95 near 6.5 s (target 10 s) at a fraction of the cost of 2 s (bench/rollup.py).
ROLLUP_DEBOUNCE_SECONDS = env_int("ROLLUP_DEBOUNCE_SECONDS", 5)
RAW_EVENT_RETENTION_DAYS = env_int("RAW_EVENT_RETENTION_DAYS", 400)
# Distinct values of one tag dimension per tenant and UTC day that keep rows of their own;
# later values of that day are summed under "(other)" (exact in total, bounded in rows).
TAG_VALUES_PER_DAY = env_int("TAG_VALUES_PER_DAY", 200)

METRICS_TOKEN = env_str("METRICS_TOKEN")
# Anonymous /metrics scrapes get 401 unless this is set: only for a private network, where
# whoever can reach the port may read every tenant's spend (see README, Metrics).
METRICS_PUBLIC = env_bool("METRICS_PUBLIC", False)

ALERT_RETRY_BASE_SECONDS = float(env_str("ALERT_RETRY_BASE_SECONDS", "10"))
ALERT_DELIVERY_TIMEOUT_SECONDS = float(env_str("ALERT_DELIVERY_TIMEOUT_SECONDS", "10"))
# Alert deliveries reach public internet addresses only (alerts/egress.py). On-premises
# receivers are let through by name or network: "alerts.corp.internal,10.20.0.0/16".
ALERT_EGRESS_ALLOW = env_list("ALERT_EGRESS_ALLOW", [])
for _entry in ALERT_EGRESS_ALLOW:
    if "/" in _entry:
        try:
            ipaddress.ip_network(_entry, strict=False)
        except ValueError as _bad:
            raise ImproperlyConfigured(f"ALERT_EGRESS_ALLOW: {_entry!r} is not a network") from _bad

# Alert email; with EMAIL_HOST unset, mail is written to the worker's log instead of sent.
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "costboard@localhost")
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
# /metrics labels (any of tenant, team, provider, model, feature, environment), the cap on label
# sets per family (the rest is summed under "other"), and how long each process reuses a
# computed scrape: keep it below Prometheus's scrape interval (see metrics/collector.py).
METRICS_LABELS = env_list("METRICS_LABELS", ["tenant", "team", "provider", "model"])
METRICS_MAX_SERIES = env_int("METRICS_MAX_SERIES", 2000)
METRICS_CACHE_SECONDS = env_int("METRICS_CACHE_SECONDS", 10)
# Operator-wide daily budget in USD for the alert rules (costboard_daily_budget_usd); unset: none.
METRICS_DAILY_BUDGET_USD = env_str("METRICS_DAILY_BUDGET_USD")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# HTTPS. With DEBUG off Costboard is HTTPS-only: secure cookies, HSTS, plain http redirected.
# COSTBOARD_PLAIN_HTTP=1 is the one switch for a deployment that really is plain http (`make
# demo`, the smoke test, the test suite's servers); DEBUG=1 implies it.
PLAIN_HTTP = DEBUG or env_bool("COSTBOARD_PLAIN_HTTP")
SESSION_COOKIE_SECURE = not PLAIN_HTTP
CSRF_COOKIE_SECURE = not PLAIN_HTTP
SECURE_SSL_REDIRECT = not PLAIN_HTTP
# Probes stay answerable over plain http inside a private network: compose's health check
# and Prometheus call web:8000 directly (/metrics still needs its token).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = 0 if PLAIN_HTTP else env_int("SECURE_HSTS_SECONDS", 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
# Preload is a promise for the whole registrable domain: only its owner can make it.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]


def _proxy_ssl_header(raw: str) -> tuple[str, str] | None:
    """`X-Forwarded-Proto: https` -> ("HTTP_X_FORWARDED_PROTO", "https"): the header a
    TLS-terminating proxy sets (and strips from clients), to trust for request.is_secure()."""
    if not raw:
        return None
    name, sep, value = raw.partition(":")
    if not sep or not name.strip() or not value.strip():
        raise ImproperlyConfigured(
            f"SECURE_PROXY_SSL_HEADER must look like 'X-Forwarded-Proto: https', got {raw!r}"
        )
    return "HTTP_" + name.strip().upper().replace("-", "_"), value.strip()


SECURE_PROXY_SSL_HEADER = _proxy_ssl_header(env_str("SECURE_PROXY_SSL_HEADER"))

# Content-Security-Policy (django-csp): our own origin only, no inline script, no eval, no
# inline style but two stylesheets plotly.min.js adds as it loads, allowed by their hashes:
# the empty <style> it then fills through the CSSOM (which CSP does not govern), and the
# MapLibre CSS its bundle carries (we draw no maps; blocking it would log an error on every
# page). A Plotly upgrade that changes them fails tests/dashboard/test_browser.py.
PLOTLY_EMPTY_STYLE = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
PLOTLY_MAPLIBRE_STYLE = "'sha256-ji27qzEtxXZW+7dun6UwjHXJ18e6WAin1VvNtkzIE/o='"
INSTALLED_APPS += ["csp"]
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "csp.middleware.CSPMiddleware",
)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", PLOTLY_EMPTY_STYLE, PLOTLY_MAPLIBRE_STYLE],
        # data: for the favicon and Plotly's "download as PNG", which renders its SVG
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# Members and passwords (members/): invitations, roles, password change and reset by email,
# and the login lockout (django-axes with a cache-backed handler: no database write per try).
INSTALLED_APPS += ["axes", "members"]
# Last, as axes asks: it turns a lockout flagged during the request into the lockout answer.
MIDDLEWARE.append("axes.middleware.AxesMiddleware")
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out login, right password or not
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)  # failures in a row for one username
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 20)  # ... from one address
LOGIN_LOCKOUT_MINUTES = env_int("LOGIN_LOCKOUT_MINUTES", 15)
# Proxies in front that append to X-Forwarded-For (0: the client is REMOTE_ADDR).
LOGIN_TRUSTED_PROXIES = env_int("LOGIN_TRUSTED_PROXIES", 0)
AXES_HANDLER = "members.lockout.LockoutHandler"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "members.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "members.lockout.client_address"
AXES_ENABLE_ADMIN = False
AXES_VERBOSE = False  # no start-up banner; lockouts are logged by members.lockout
# Invitation links: one use, then void; PASSWORD_RESET_TIMEOUT bounds password-reset links.
INVITE_LINK_DAYS = env_int("INVITE_LINK_DAYS", 7)
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_HOURS", 2) * 3600

# genai-prices' own updater (UpdatePrices), opt-in: off, the catalog is the data bundled with
# the installed genai-prices (air-gapped installs). On, every web and worker process fetches
# CATALOG_UPDATE_URL every CATALOG_UPDATE_INTERVAL seconds so new models get prices without
# an upgrade; stored events keep their costs until `rollup --since` re-prices them.
CATALOG_AUTO_UPDATE = env_bool("CATALOG_AUTO_UPDATE", False)
CATALOG_UPDATE_URL = env_str(
    "CATALOG_UPDATE_URL",
    "https://raw.githubusercontent.com/pydantic/genai-prices/refs/heads/main/prices/new_data/v2/data.json",
)
CATALOG_UPDATE_INTERVAL = env_int("CATALOG_UPDATE_INTERVAL", 3600)
