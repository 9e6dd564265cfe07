"""Settings of the servers the browser, fault and soak tests start in subprocesses.

The test project's settings (demo + test-only URLs), with ``REALTIME`` keys overridden from the
``REALTIME_OVERRIDES`` environment variable (a JSON object), so a test can shorten a timeout.
The database comes from ``DATABASE_URL`` (the test database of the pytest session).
"""

import json
import os

from tests.project.settings import *  # noqa: F403
from tests.project.settings import REALTIME

REALTIME = {**REALTIME, **json.loads(os.environ.get("REALTIME_OVERRIDES") or "{}")}

# Users of the browser tests log in with a fast hash (see tests/e2e/conftest.py: make_user).
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
