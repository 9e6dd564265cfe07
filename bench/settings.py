"""Bench settings: the test project's, on a database of its own (``bench``), without DEBUG."""

import os

from tests.project.settings import *  # noqa: F403
from tests.project.settings import DATABASES, REALTIME, TEMPLATES

DEBUG = False
TEMPLATES[0]["DIRS"] = [*TEMPLATES[0]["DIRS"], BASE_DIR / "bench" / "templates"]  # noqa: F405
ROOT_URLCONF = "bench.urls"
DATABASES["default"] = {**DATABASES["default"], "NAME": os.environ.get("BENCH_DB", "bench")}
REALTIME = {
    **REALTIME,
    "HEARTBEAT": 15.0,
    "CHANNEL": "realtime_bench",
    # Every simulated tab comes from 127.0.0.1 (one client to the per-client cap).
    "MAX_STREAMS_PER_CLIENT": 0,
    "MAX_STREAMS": 0,
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "realtime": {"handlers": ["console"], "level": "WARNING"},
        "django.request": {"handlers": ["console"], "level": "ERROR"},
    },
}
if os.environ.get("BENCH_STREAM_COMPRESSION"):
    REALTIME["STREAM_COMPRESSION"] = os.environ["BENCH_STREAM_COMPRESSION"]
if os.environ.get("BENCH_PG_OPTIONS"):
    # e.g. "-c synchronous_commit=off": what a command costs without waiting for the WAL flush.
    DATABASES["default"]["OPTIONS"] = {
        **DATABASES["default"].get("OPTIONS", {}),
        "options": os.environ["BENCH_PG_OPTIONS"],
    }
