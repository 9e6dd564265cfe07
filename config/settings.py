"""Settings for the demo project (a live support desk built on ``realtime``).

The database is ``DATABASE_URL`` when set, else an embedded PostgreSQL in ``.pgdata/`` (see
``config/database.py``). Everything else can be tuned with environment variables named below.

Safe by default: ``DEBUG`` is on only when ``DJANGO_DEBUG=1`` asks (``make run`` does), and
without ``DEBUG`` the settings refuse to load unless ``DJANGO_SECRET_KEY`` holds a real key. With
``DEBUG`` off, HTTPS is assumed (secure cookies, redirect to HTTPS); docs/deploying.md lists the
production variables with which ``manage.py check --deploy`` is clean.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.database import database_settings

BASE_DIR = Path(__file__).resolve().parent.parent


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value == "1"


#: The development key, public in this repository: never good enough without DEBUG.
DEMO_SECRET_KEY = "django-insecure-demo-only-change-me"

DEBUG = _flag("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or (DEMO_SECRET_KEY if DEBUG else "")
if not DEBUG and (not SECRET_KEY or SECRET_KEY.startswith("django-insecure")):
    raise ImproperlyConfigured(
        "DEBUG is off, so set DJANGO_SECRET_KEY to a long random secret "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
        "or set DJANGO_DEBUG=1 for development (make run does)."
    )
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")
CSRF_TRUSTED_ORIGINS = [
    o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o
]

# HTTPS: on by default without DEBUG (see docs/deploying.md, "Security").
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = _flag("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
if _flag("DJANGO_SECURE_PROXY_SSL_HEADER", False):
    # Only behind a proxy that sets (overwrites) X-Forwarded-Proto, as the nginx example does.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = _flag("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = _flag("DJANGO_HSTS_PRELOAD", False)

INSTALLED_APPS = [
    # realtime first: its runserver (ASGI, streaming) must win over staticfiles' one.
    "realtime",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_http_compression",
    "tickets",
    "examples.tasks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
    "django_http_compression.middleware.HttpCompressionMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"

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

WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

DATABASES = {"default": database_settings(BASE_DIR)}

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

STATIC_URL = "static/"
# Where `manage.py collectstatic` puts them for the reverse proxy (docs/deploying.md).
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT") or BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# Content-Security-Policy of every HTML page (config/middleware.py; Django 6's setting and format).
# Why each directive is there: docs/deploying.md, "Content-Security-Policy".
SECURE_CSP: dict[str, list[str]] = {
    "default-src": ["'self'"],
    # Datastar compiles its data-* expressions with Function(), and htmx its hx-on handlers:
    # 'unsafe-eval'. No inline <script> anywhere, so no 'unsafe-inline'. The CDN is the origin of
    # Datastar's default REALTIME["DATASTAR_URL"]; a self-hosted copy needs only 'self'.
    "script-src": ["'self'", "'unsafe-eval'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],  # Datastar's @get/@post and the SSE streams
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}

# The reusable app's settings: one dict, documented in docs/reference.md.
REALTIME: dict[str, object] = {}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"realtime": {"handlers": ["console"], "level": "INFO"}},
}
