"""One settings module for every environment, read from the environment (12-factor).

The embedded default (no DATABASE_URL, no REDIS_URL) is SQLite with Celery tasks run eagerly in-process and
e-mail to the console, so `make run` works on a fresh machine. Production sets DATABASE_URL, REDIS_URL,
SECRET_KEY and ALLOWED_HOSTS; with DEBUG off a missing secret or host list stops the start.
"""

import ipaddress
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from config.channels import email_settings, sms_settings, unsubscribe_mailto

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", default="insecure-dev-key-only-for-debug")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
else:
    # Fail loudly rather than run production with a guessable key or an open host header.
    try:
        SECRET_KEY = env.str("SECRET_KEY")
        ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(
            f"{exc}. With DEBUG off, SECRET_KEY and ALLOWED_HOSTS must be set in the environment "
            "(or set DEBUG=1 for local development)."
        ) from None
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS is empty; set it to the site's host names.")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    # Ours, from the bottom layer up (README "How it works"): admin registers in this order too.
    "core",
    "leads",
    "lenders",
    "billing",
    "marketplace",
    "compliance",
    "portal",
    "integrations",
    # Providers' inbound e-mail webhooks (the List-Unsubscribe mailto, integrations.receivers); no models.
    "anymail",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.security.ContentSecurityPolicyMiddleware",
    # Last, as django-axes asks: it sees the outcome of every login.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # locks out after repeated failures, before checking the password
    "django.contrib.auth.backends.ModelBackend",
]
# Five failed logins for one username from one address lock it for an hour (portal and admin alike).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = 1  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "portal/locked_out.html"
AXES_VERBOSE = False
AXES_CLIENT_IP_CALLABLE = "core.clientip.client_ip"  # the same address the rest of the site sees

# The reverse proxies in front of the web processes, as addresses or networks ("10.0.0.0/8,192.0.2.10"):
# only their X-Forwarded-For is believed (core.clientip). Empty, the default: the header is ignored.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy.strip(), strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES: {_proxy!r} is not an IP address or network.") from None

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
            ],
        },
    },
]

# Set but empty (`DATABASE_URL=` in a .env or compose file) means unset, as for REDIS_URL below.
DATABASES = {
    "default": env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    )
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # SQLite serialises writers; wait for the lock instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:inbox"
LOGOUT_REDIRECT_URL = "portal:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
# Without collectstatic (tests, `make run`), serve static files straight from the apps and static/.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Celery -------------------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None  # results unused; bench sets one
# Without a broker (the embedded default) tasks run in-process when they are enqueued.
CELERY_TASK_ALWAYS_EAGER = env.bool(
    "CELERY_TASK_ALWAYS_EAGER", default=not (REDIS_URL or env("CELERY_BROKER_URL", default=""))
)
# In the embedded mode a failing task must not turn the consumer's submission into an error page: the lead
# is already saved, the failure is logged and set aside (FailedTask). Tests turn propagation on.
CELERY_TASK_EAGER_PROPAGATES = env.bool("CELERY_TASK_EAGER_PROPAGATES", default=False)
# Celery's Django fix-up closes the database connection around every task unless told to reuse it; a new
# PostgreSQL connection per task was a large share of each task's time.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=500)
# Leads one qualify task may take from the `received` backlog and sell in one transaction. 1 turns
# batching off; larger batches raise throughput under load and lengthen each sale transaction.
PIPELINE_BATCH_SIZE = env.int("PIPELINE_BATCH_SIZE", default=50)
CELERY_TASK_IGNORE_RESULT = True  # no task's caller reads its result (the benchmark's ping opts back in)
CELERY_TASK_ACKS_LATE = True  # every task is idempotent, so redelivery after a crash is safe
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 60
CELERY_TASK_SOFT_TIME_LIMIT = 45
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Longer than the longest task and any countdown we use, so an unacked task is not redelivered early.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    # A web request that enqueues while the broker is down fails over in a fraction of a second instead of
    # blocking the consumer for seconds; the lead is already saved and the sweeper queues it later.
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
# Work that waits on someone else's server (a lender's endpoint, the mail server) has queues of its own,
# consumed by the outbound worker: however slow they are, the sales workers never wait on them.
CELERY_TASK_ROUTES = {
    "integrations.tasks.webhook_endpoint_send_due": {"queue": "webhooks"},
    "integrations.tasks.deliveries_email": {"queue": "mail"},
    "integrations.tasks.endpoint_disabled_notify": {"queue": "mail"},
    "integrations.tasks.low_balance_notify": {"queue": "mail"},
    "integrations.tasks.return_decided_email": {"queue": "mail"},
    "integrations.tasks.text_reply_notify": {"queue": "mail"},
    # Outreach sends to consumers (mail server, Twilio): the outbound worker's, never a sales worker's.
    "integrations.outreach.tasks.deliveries_outreach_start": {"queue": "mail"},
    "integrations.outreach.tasks.outreach_run_due": {"queue": "mail"},
    "lenders.tasks.invitation_send": {"queue": "mail"},
    "marketplace.tasks.followups_remind_overdue": {"queue": "mail"},
}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "retry-unsold-leads": {"task": "marketplace.tasks.leads_unsold_retry", "schedule": 300.0},
    # The lenders' 30-day median time to first contact, which breaks ties among close bids.
    "refresh-lender-speeds": {"task": "marketplace.tasks.lender_speeds_refresh", "schedule": 600.0},
    # Pushes on leads whose task was lost (broker down at commit): how often, and how old a lead must be.
    "sweep-stuck-leads": {
        "task": "marketplace.tasks.leads_stuck_sweep",
        "schedule": env.float("SWEEPER_INTERVAL_SECONDS", default=60.0),
        "kwargs": {"older_than_seconds": env.int("SWEEPER_MIN_AGE_SECONDS", default=60)},
    },
    # The same for deliveries whose notification or e-mail task was lost.
    "sweep-stuck-deliveries": {
        "task": "integrations.tasks.deliveries_stuck_sweep",
        "schedule": env.float("SWEEPER_INTERVAL_SECONDS", default=60.0),
        "kwargs": {"older_than_seconds": env.int("SWEEPER_MIN_AGE_SECONDS", default=60)},
    },
    "erase-expired-consumers": {"task": "compliance.tasks.consumers_erase_expired", "schedule": 3600.0},
    # Officers hear about an overdue follow-up within five minutes, once (FollowUp.reminded_at).
    "remind-overdue-followups": {"task": "marketplace.tasks.followups_remind_overdue", "schedule": 300.0},
    # Webhook retries wait in the database (next_attempt_at), not in the broker: hours-long countdowns
    # would outlive the visibility timeout and be redelivered early.
    "send-due-webhooks": {
        "task": "integrations.tasks.webhook_endpoints_schedule_due",
        "schedule": env.float("WEBHOOK_SWEEPER_INTERVAL_SECONDS", default=30.0),
    },
    # Publishes outbox tasks (e-mails about events) that the broker refused at commit.
    "sweep-outbox": {
        "task": "core.tasks.outbox_flush",
        "schedule": env.float("SWEEPER_INTERVAL_SECONDS", default=60.0),
        "kwargs": {"older_than_seconds": env.int("SWEEPER_MIN_AGE_SECONDS", default=60)},
    },
    # Sequence steps due (each run once, quiet hours kept), and outreach a lost task left undone.
    "run-due-outreach": {
        "task": "integrations.outreach.tasks.outreach_run_due",
        "schedule": env.float("OUTREACH_INTERVAL_SECONDS", default=30.0),
    },
    # Expired Idempotency-Key answers and old webhook payloads (both may hold contact details).
    "purge-expired-records": {"task": "integrations.tasks.records_expired_purge", "schedule": 3600.0},
}

# --- E-mail -------------------------------------------------------------------------------------------
# Django's backends by EMAIL_URL (console by default, SMTP in production), or a transactional provider's
# API through django-anymail: ANYMAIL_ESP picks the provider, ANYMAIL_API_KEY its key (config.channels).
vars().update(email_settings(env))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Lead Market <no-reply@leadmarket.local>")
# Where the List-Unsubscribe mailto: of marketing e-mail points (the https link is the one that acts).
UNSUBSCRIBE_MAILTO = env.str("UNSUBSCRIBE_MAILTO", default="") or unsubscribe_mailto(DEFAULT_FROM_EMAIL)
# The marketplace's postal address, printed in consumer e-mail when the lender has none of its own.
SENDER_POSTAL_ADDRESS = env.str("SENDER_POSTAL_ADDRESS", default="")

# --- SMS ------------------------------------------------------------------------------------------------
# `console` (the default: printed, and kept in integrations.channels.sms.outbox) or `twilio` (REST API);
# with Twilio the account's SID and auth token are required, and a sender: a number or a messaging service.
_sms = sms_settings(env)
SMS_BACKEND = _sms["SMS_BACKEND"]
SMS_HELP_TEXT = _sms["SMS_HELP_TEXT"]
TWILIO_ACCOUNT_SID = _sms["TWILIO_ACCOUNT_SID"]
TWILIO_AUTH_TOKEN = _sms["TWILIO_AUTH_TOKEN"]  # also the key Twilio signs its webhooks with
TWILIO_FROM_NUMBER = _sms["TWILIO_FROM_NUMBER"]
TWILIO_MESSAGING_SERVICE_SID = _sms["TWILIO_MESSAGING_SERVICE_SID"]
TWILIO_API_URL = _sms["TWILIO_API_URL"]

# --- The market ---------------------------------------------------------------------------------------
# FHFA's county loan limit file `make run` / `make up` import: the 2026 file shipped in leads/data/ unless
# staff point it at a newer one (a data migration loads the shipped file into a fresh database).
LOAN_LIMITS_FILE = env.str(
    "LOAN_LIMITS_FILE", default=str(BASE_DIR / "leads/data/fhfa-conforming-loan-limits-2026.psv")
)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only, and every error as RFC 9457 problem+json (core.problems).
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "core.renderers.ProblemJSONRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "core.problems.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# Requests per API key (integrations.throttling), read at request time so tests and operators can change them.
API_RATE_LIMITS = {
    "partner": env.str("API_RATE_PARTNER", default="120/min"),
    "lender": env.str("API_RATE_LENDER", default="600/min"),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Lead Market API",
    "DESCRIPTION": (
        "Partner lead intake and the lender API. Authenticate with `Authorization: Bearer <key>`. "
        "Errors are RFC 9457 problem details (`application/problem+json`)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Conditional requirements (integrations.schema) are added after the enum hook has named the enums.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "integrations.schema.required_when_one_of",
    ],
    "ENUM_NAME_OVERRIDES": {
        "DeliveryStatusEnum": "integrations.api.enums.DELIVERY_STATUS",
        "LeadStatusEnum": "integrations.api.enums.LEAD_STATUS",
        "LedgerKindEnum": "integrations.api.enums.LEDGER_KIND",
        "ActivityKindEnum": "integrations.api.enums.ACTIVITY_KIND",
        "ReturnStatusEnum": "integrations.api.enums.RETURN_STATUS",
    },
}
# Webhooks never reach private or loopback addresses; development and tests may allow loopback only.
WEBHOOK_ALLOW_LOOPBACK = env.bool("WEBHOOK_ALLOW_LOOPBACK", default=False)
# Copies of contact details are kept no longer than they are used (integrations.tasks.records_expired_purge):
# an Idempotency-Key's stored answer replays for this long; a delivered webhook's payload stays (to resend)
# for this many days, a failed one's longer, so a lender back from an outage can still resend it.
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=72)
WEBHOOK_PAYLOAD_RETENTION_DAYS = env.int("WEBHOOK_PAYLOAD_RETENTION_DAYS", default=3)
WEBHOOK_FAILED_PAYLOAD_RETENTION_DAYS = env.int("WEBHOOK_FAILED_PAYLOAD_RETENTION_DAYS", default=14)
# The inbox CSV: up to this many rows it streams from the request; more, and a Celery task writes it and
# e-mails the member a signed link, valid this many hours (the file is deleted then).
# Re-qualification when staff activate a new rate sheet: open deliveries of the last N days whose estimate
# rises by more than this share (or that a product newly fits) get a call task on My day.
REQUALIFY_WINDOW_DAYS = env.int("REQUALIFY_WINDOW_DAYS", default=90)
REQUALIFY_RISE_SHARE = env.str("REQUALIFY_RISE_SHARE", default="0.05")
INBOX_EXPORT_MAX_ROWS = env.int("INBOX_EXPORT_MAX_ROWS", default=20_000)
INBOX_EXPORT_LINK_HOURS = env.int("INBOX_EXPORT_LINK_HOURS", default=72)

# The cache holds rate-limit counters: shared in Redis when there is one, per process otherwise.
# CACHE_URL overrides (e.g. `locmemcache://` in tests, so counters never touch the broker's database).
if env.str("CACHE_URL", default=""):
    CACHES = {"default": env.cache("CACHE_URL")}
elif REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Logging: no personal data; ids only -------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

if env.bool("SECURE_PROXY", default=not DEBUG):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # Behind a TLS-terminating proxy: redirect plain HTTP, and tell browsers to insist on HTTPS.
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # the load balancer probes over plain HTTP
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# No inline script anywhere: every script is a static file. Styles may be set by htmx and Swagger UI.
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "font-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

# Public endpoints' rate limits (per client IP), besides the API's per-key throttles.
LEAD_FORM_RATE_LIMIT = env.int("LEAD_FORM_RATE_LIMIT", default=20)  # submissions per IP per window
LEAD_FORM_RATE_WINDOW = env.int("LEAD_FORM_RATE_WINDOW", default=600)  # seconds

# Tests: a fast hasher; set by conftest through this flag so production never uses it.
if env.bool("FAST_PASSWORD_HASHER", default=False):
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Absolute links in e-mails.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
