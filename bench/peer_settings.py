"""Settings every Django peer of the bench shares (Channels, django-eventstream).

The bench gives the database as JSON in ``BENCH_DB_JSON``; each peer's settings module adds its
apps, URLs and ``DATABASES`` on top of these.
"""

import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: The bench database's settings, as the bench passed them.
BENCH_DB: dict[str, Any] = json.loads(os.environ["BENCH_DB_JSON"])

SECRET_KEY = "bench-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
BASE_APPS = ["django.contrib.auth", "django.contrib.contenttypes"]
MIDDLEWARE: list[str] = []
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [ROOT / "tests" / "realtime" / "templates"],
    }
]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
