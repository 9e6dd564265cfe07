"""Settings of the demo's tests and of the servers they start: the demo's, plus the reusable app's
test views (tests/realtime/views.py) at test-only URLs.

Tests run without DEBUG, as production does, so they need a secret key (set in the environment,
where the servers the tests start find it too) and plain HTTP on 127.0.0.1.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-" + "not-a-secret-" * 4)

from config.settings import *  # noqa: F403
from config.settings import TEMPLATES

SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = False

ROOT_URLCONF = "tests.project.urls"
TEMPLATES[0]["DIRS"] = [*TEMPLATES[0]["DIRS"], BASE_DIR / "tests" / "realtime" / "templates"]  # noqa: F405
# Tests open hundreds of anonymous streams from 127.0.0.1; the caps have tests of their own.
REALTIME = {**REALTIME, "HEARTBEAT": 1.0, "MAX_STREAMS_PER_CLIENT": 0}  # noqa: F405
