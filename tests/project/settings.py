"""Settings for the test suite and the servers it starts: the demo's, plus test-only URLs."""

from config.settings import *  # noqa: F403
from config.settings import TEMPLATES

ROOT_URLCONF = "tests.project.urls"
TEMPLATES[0]["DIRS"] = [*TEMPLATES[0]["DIRS"], BASE_DIR / "tests" / "project" / "templates"]  # noqa: F405
# Tests open hundreds of anonymous streams from 127.0.0.1; the caps have tests of their own.
REALTIME = {**REALTIME, "HEARTBEAT": 1.0, "MAX_STREAMS_PER_CLIENT": 0}  # noqa: F405
