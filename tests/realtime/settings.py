"""Minimal settings for the reusable app's tests (and the servers they start): Django's own apps,
``realtime``, and the test views of tests/realtime/urls.py. Nothing of the demo project.

The database is ``DATABASE_URL`` when set. Otherwise it is the embedded PostgreSQL, which
tests/realtime/conftest.py starts (tests/helpers.py: ``database_settings``) and fills in before
pytest-django creates the test database: importing these settings starts nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "realtime-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    # realtime first: its runserver (ASGI, streaming) must win over staticfiles' one.
    "realtime",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "tests.realtime.liveapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django_http_compression.middleware.HttpCompressionMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.realtime.urls"
ASGI_APPLICATION = "tests.realtime.asgi.application"

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

_URL = os.environ.get("DATABASE_URL", "").strip()
DATABASES: dict[str, dict[str, Any]] = {
    # Without DATABASE_URL: a placeholder the conftest completes (see the module docstring).
    "default": dict(dj_database_url.parse(_URL))
    if _URL
    else {"ENGINE": "django.db.backends.postgresql", "NAME": "postgres"}
}

USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Users log in with a fast hash: a test's login costs nothing.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Tests open hundreds of anonymous streams from 127.0.0.1; the caps have tests of their own.
# A server a test starts (tests/helpers.py: ServerProcess) gets its overrides as JSON.
REALTIME = {
    "HEARTBEAT": 1.0,
    "MAX_STREAMS_PER_CLIENT": 0,
    **json.loads(os.environ.get("REALTIME_OVERRIDES") or "{}"),
}
