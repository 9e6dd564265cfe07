"""Settings for servers the tests start: the demo's, plus a few test-only URLs."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "tests.project.urls"
