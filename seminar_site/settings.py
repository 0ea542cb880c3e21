"""One settings module, driven by the environment (django-environ).

Embedded default (nothing set): SQLite in ``var/``, no Redis (Celery uses kombu's filesystem
transport in ``var/broker``), e-mails written to ``var/mail``. Production mode
(``DJANGO_DEBUG=false``) refuses to start without a real ``SECRET_KEY``.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("VAR_DIR", default=str(BASE_DIR / "var")))

# Every variable may also be given as a file (Docker secrets): SECRET_KEY_FILE=/run/secrets/key.
env = environ.FileAwareEnv()

DEBUG = env.bool("DJANGO_DEBUG", default=True)
_INSECURE_KEY = "embedded-mode-only-not-secret"
SECRET_KEY = env.str("SECRET_KEY", default=_INSECURE_KEY)
if not DEBUG and SECRET_KEY == _INSECURE_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DJANGO_DEBUG is false.")
# Loopback stays allowed so that container health checks reach /healthz.
ALLOWED_HOSTS = [
    *env.list("ALLOWED_HOSTS", default=["testserver"]),
    "localhost",
    "127.0.0.1",
    "[::1]",
]
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    # Django's admin, with seminar_site.admin_site.SeminarAdminSite as admin.site.
    "seminar_site.apps.SeminarAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "csp",
    "django_ratelimit",
    "registration",
    "childcare",
    "lottery",
    "office",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # 400 for oversized bodies, other charsets, NUL in the address: before anything reads them.
    "seminar_site.security.RefuseMalformedRequests",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "seminar_site.urls"
WSGI_APPLICATION = "seminar_site.wsgi.application"

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
                "django.template.context_processors.i18n",
                "registration.context_processors.office",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Keep connections between requests; health checks drop a connection that a database
    # restart has broken, so gunicorn workers recover without a restart.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATABASES["default"].setdefault("OPTIONS", {})
    # WAL lets the web server, the worker and beat share the embedded database.
    DATABASES["default"]["OPTIONS"].update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # Rate-limit counters and the public pages' generation, which fail open: a Redis
            # that hangs must cost a parent half a second per call, not the whole request.
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# {% cache %} (the blank application form) uses this one, in each process's memory and never in
# Redis: with Redis down, the form page would otherwise be an error page.
CACHES["template_fragments"] = {
    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    "LOCATION": "template-fragments",
}
# The public home pages, per process; their shared generation key is in the default cache
# (registration/page_cache.py).
CACHES["public_pages"] = {
    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    "LOCATION": "public-pages",
}

# django-axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", _("Japanese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Tokyo"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# E-mail: EMAIL_URL (smtp://user:pass@host:587) in production, files in var/mail otherwise.
EMAIL_URL = env.str("EMAIL_URL", default="")
if EMAIL_URL:
    vars().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(VAR_DIR / "mail")
# A mail server that stops answering must not hold a worker for ever (seconds).
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
# docker-compose.yml passes an empty value when .env leaves it out: that means the default.
DEFAULT_FROM_EMAIL = (
    env.str("DEFAULT_FROM_EMAIL", default="")
    or "学校以外の多様な学びの場 セミナー事務局 <seminar@example.jp>"
)
# The outbox (registration/outbox/). The sweep sends what a lost task left behind: e-mails
# queued for longer than OUTBOX_SWEEP_AFTER_SECONDS, every OUTBOX_SWEEP_INTERVAL_SECONDS.
OUTBOX_SWEEP_AFTER_SECONDS = env.int("OUTBOX_SWEEP_AFTER_SECONDS", default=60)
OUTBOX_SWEEP_INTERVAL_SECONDS = env.float("OUTBOX_SWEEP_INTERVAL_SECONDS", default=60.0)
# An e-mail claimed by a worker that died is sent again after this long. It is the one window in
# which a parent can receive an e-mail twice (README "Deploying", "E-mail delivery").
OUTBOX_STALE_SENDING_SECONDS = env.int("OUTBOX_STALE_SENDING_SECONDS", default=600)
# At most this many e-mails a second, over all mail workers together (0: no limit). Counted in
# Redis when REDIS_URL is set, in the worker's memory otherwise.
OUTBOX_RATE_PER_SECOND = env.int("OUTBOX_RATE_PER_SECOND", default=0)
# Temporary failures (SMTP 4xx, connection lost) are tried again after 1, 2, 4 … times this
# delay, at most OUTBOX_RETRY_MAX_SECONDS apart; after OUTBOX_MAX_ATTEMPTS the e-mail is
# marked failed and shown to the office, which can send it again.
OUTBOX_RETRY_BASE_SECONDS = env.int("OUTBOX_RETRY_BASE_SECONDS", default=60)
OUTBOX_RETRY_MAX_SECONDS = env.int("OUTBOX_RETRY_MAX_SECONDS", default=3600)
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=10)

# The seminar office, shown on every page and in every e-mail.
OFFICE_PHONE = env.str("OFFICE_PHONE", default="03-6633-3665")
NAVIGATOR_URL = env.str("NAVIGATOR_URL", default="https://www.tokyo-manabinavi.metro.tokyo.lg.jp/")

# Personal data is shredded this many days after an edition's last session.
RETENTION_DAYS = env.int("RETENTION_DAYS", default=90)

# My application links: signed, and refused after this many days.
MY_APPLICATION_LINK_MAX_AGE_DAYS = env.int("MY_APPLICATION_LINK_MAX_AGE_DAYS", default=180)
# Raise by one to cancel every My application link sent so far (after a leak: old logs, a lost
# backup); parents then ask for a new one on the link page.
MY_APPLICATION_LINK_GENERATION = env.int("MY_APPLICATION_LINK_GENERATION", default=1)

# Celery: Redis when REDIS_URL is set, kombu's filesystem transport otherwise, so that
# `make run` exercises a real worker and beat without any service.
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # One connection attempt per publish: by default kombu sleeps 2 s and tries again before it
    # gives up, whatever CELERY_BROKER_CONNECTION_TIMEOUT says. (The worker reconnects with its
    # own retry settings.)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "max_retries": 0,
        # A Redis that accepts connections and then never answers must not hold a parent's
        # request for ever. Web processes only publish: docker-compose.yml gives them 0.5 s.
        # A worker's BRPOP waits 1 s for a task, so the default stays above that.
        "socket_connect_timeout": env.float("BROKER_SOCKET_TIMEOUT", default=5.0),
        "socket_timeout": env.float("BROKER_SOCKET_TIMEOUT", default=5.0),
    }
else:
    _broker = VAR_DIR / "broker"
    for _folder in ("queue", "processed", "control"):
        (_broker / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker / "queue"),
        "data_folder_out": str(_broker / "queue"),
        "processed_folder": str(_broker / "processed"),
        "control_folder": str(_broker / "control"),
        "store_processed": False,
    }
# Publishing must never keep a parent waiting: the outbox sweep picks up what a failed
# publish left behind.
CELERY_BROKER_CONNECTION_TIMEOUT = 1.0
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_PUBLISH_RETRY = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE
# Mail has its own queue (and worker in production) so a slow mail server delays nothing else.
CELERY_TASK_ROUTES = {
    "registration.tasks.send_outbox_email": {"queue": "mail"},
    "registration.tasks.outbox_drain": {"queue": "mail"},
    "registration.tasks.outbox_sweep": {"queue": "mail"},
}
CELERY_BEAT_SCHEDULE = {
    "outbox-sweep": {
        "task": "registration.tasks.outbox_sweep",
        "schedule": OUTBOX_SWEEP_INTERVAL_SECONDS,
    },
    "lottery-tick": {"task": "lottery.tasks.lottery_tick", "schedule": 60.0},
    "reminders": {"task": "registration.tasks.reminders_send", "schedule": 3600.0},
    "retention-shred": {"task": "registration.tasks.retention_shred", "schedule": 86400.0},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# Every handler drops private links and query values (seminar_site/logs.py); runserver's request
# log (django.server) is redefined here only to add that filter. gunicorn's access log has its
# own logger class (gunicorn.conf.py).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "seminar_site.logs.RedactPrivateLinks"}},
    "formatters": {
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["redact"]},
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["redact"],
        },
    },
    "loggers": {
        # Django's default configuration gives the "django" logger a console handler of its own
        # (without the filter) in DEBUG: its records go to the root handler instead.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# --- Security -------------------------------------------------------------------------------
# Reverse proxies in front of the site that append to X-Forwarded-For (README "Deploying" puts
# one TLS-terminating proxy in front in production; none in the embedded mode). The client's
# address is read from there for admin lockouts and rate limits: seminar_site.security.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0 if DEBUG else 1)

# django-axes: admin password guessing. After AXES_FAILURE_LIMIT failures the username and the
# client address are each locked out for AXES_COOLOFF_MINUTES, even with the right password.
# Staff unlock sooner with `python manage.py axes_reset_username NAME` (or axes_reset_ip).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "seminar_site.security.client_ip"
# A failed login's form and query are stored for the administrators: never the code, and never
# the page it was for (?next= repeats a staff search, e.g. ?q=山田).
AXES_SENSITIVE_PARAMETERS = ["password", "otp_token", "next"]
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"

# django-otp: a second factor (TOTP authenticator app, or static one-time codes) for any staff
# member who adds a device; required for every staff member in production, since every role
# sees personal data (seminar_site.admin_site).
OTP_REQUIRED_FOR_STAFF = not DEBUG
OTP_TOTP_ISSUER = "Seminar office"

# Rate limits on the parents' public POSTs (seminar_site.ratelimit): per client address, and per
# e-mail address for "e-mail me my link again". Rates are "count/period", e.g. "30/10m".
RATELIMIT_ENABLE = env.bool("RATELIMIT_ENABLE", default=True)
RATELIMIT_APPLY = env.str("RATELIMIT_APPLY", default="30/10m")
RATELIMIT_RESEND_LINK = env.str("RATELIMIT_RESEND_LINK", default="10/h")
RATELIMIT_RESEND_LINK_PER_ADDRESS = env.str("RATELIMIT_RESEND_LINK_PER_ADDRESS", default="5/h")
RATELIMIT_IP_META_KEY = "seminar_site.security.client_ip"
# The 送信 step answers no sooner than this (seconds), whether the address was new or had
# applied already, so that its timing does not tell which (seminar_site.security).
APPLY_SUBMIT_ANSWER_SECONDS = env.float("APPLY_SUBMIT_ANSWER_SECONDS", default=0.15)
# A counter that cannot be read or written lets the request through (seminar_site.ratelimit).
RATELIMIT_FAIL_OPEN = True
SILENCED_SYSTEM_CHECKS = [
    # django-ratelimit's list of supported caches predates Django's own RedisCache (4.0), which
    # it flags as "not officially supported". That backend increments with Redis INCRBY, which is
    # atomic; the one race left (the key expiring between its EXISTS and INCRBY) raises the
    # ValueError that django-ratelimit expects, and RATELIMIT_FAIL_OPEN lets that request through.
    "django_ratelimit.W001",
]
if not REDIS_URL:
    # Without Redis the counters live in each process's memory: exact in the embedded mode (one
    # runserver process), looser by the number of gunicorn workers otherwise. docker-compose.yml
    # always sets REDIS_URL.
    SILENCED_SYSTEM_CHECKS.append("django_ratelimit.E003")

# Content-Security-Policy (django-csp): no inline or third-party script anywhere, the admin
# included. style-src allows 'unsafe-inline' because templates carry style="" attributes and a
# few <style> blocks (the printable ticket, the reception list, Django admin's change list);
# data: images are Bootstrap's inline SVG icons.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    },
}

# Request bodies: the application form is about 100 fields and a few kB; the largest staff form
# (a session with its booths) a few hundred fields. Anything far beyond is refused with 400.
# No form takes a file: a body larger than this is refused by its Content-Length before it is
# read (seminar_site.security.RefuseMalformedRequests), and a multipart body's first file part
# with 400 before an upload handler stores a byte of it (DATA_UPLOAD_MAX_NUMBER_FILES = 0;
# DATA_UPLOAD_MAX_MEMORY_SIZE does not count files). README "Deploying" sets the same limit in
# the reverse proxy, which stops the body before it reaches gunicorn.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=512 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = env.int("DATA_UPLOAD_MAX_NUMBER_FIELDS", default=500)
DATA_UPLOAD_MAX_NUMBER_FILES = 0

CSRF_FAILURE_VIEW = "seminar_site.errors.csrf_failure"
SESSION_ENGINE = "seminar_site.sessions"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # __Host-: the browser keeps these cookies only when set by this very host over HTTPS with
    # Path=/ and no Domain, so a sibling subdomain cannot plant or overwrite them.
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
FORMAT_MODULE_PATH = ["seminar_site.formats"]
