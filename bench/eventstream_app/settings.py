"""Settings for the django-eventstream peer (database given by the bench as JSON in
``BENCH_DB_JSON``).

No ``EVENTSTREAM_REDIS``, no ``GRIP_URL`` (Pushpin) and no ``EVENTSTREAM_STORAGE_CLASS``:
django-eventstream's default, in-process delivery (see ``views``). The database goes through the
same connection pool as this project's bench settings (``config.database.with_pool``): under ASGI
each request runs its synchronous part on a thread of its own, so without a pool every command
would open a connection of its own.
"""

import json
import os
from pathlib import Path

from config.database import with_pool

ROOT = Path(__file__).resolve().parent.parent.parent

SECRET_KEY = "bench-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django_eventstream",
]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.eventstream_app.urls"
ASGI_APPLICATION = "bench.eventstream_app.asgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [ROOT / "tests" / "project" / "templates"],
    }
]
DATABASES = {"default": with_pool(json.loads(os.environ["BENCH_DB_JSON"]))}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
