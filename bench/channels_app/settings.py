"""Settings for the Channels peer (database given by the bench as JSON in ``BENCH_DB_JSON``)."""

import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

SECRET_KEY = "bench-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "channels",
    "channels_postgres",
]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.channels_app.urls"
ASGI_APPLICATION = "bench.channels_app.asgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [ROOT / "tests" / "project" / "templates"],
    }
]
DATABASES = {"default": json.loads(os.environ["BENCH_DB_JSON"])}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_postgres.core.PostgresChannelLayer",
        "CONFIG": DATABASES["default"],
    }
}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
