"""Settings of the demo's tests and of the servers they start: the demo's, plus the reusable app's
test views (tests/realtime/views.py) at test-only URLs."""

from config.settings import *  # noqa: F403
from config.settings import TEMPLATES

ROOT_URLCONF = "tests.project.urls"
TEMPLATES[0]["DIRS"] = [*TEMPLATES[0]["DIRS"], BASE_DIR / "tests" / "realtime" / "templates"]  # noqa: F405
REALTIME = {**REALTIME, "HEARTBEAT": 1.0}  # noqa: F405
