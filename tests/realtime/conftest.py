"""Fixtures of the reusable app's tests: the settings they need, their database, and a live server.

These tests run with their own settings (tests/realtime/settings.py, nothing of the demo): `make
test` runs them in a pytest run of their own, ``pytest --ds tests.realtime.settings tests/realtime``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings

from realtime import stats
from realtime.testing import LiveServer
from tests.helpers import REALTIME_SETTINGS, database_settings, wait_for
from tests.realtime import views

if settings.SETTINGS_MODULE != REALTIME_SETTINGS:
    raise pytest.UsageError(
        f"tests/realtime needs its own settings: pytest --ds {REALTIME_SETTINGS} tests/realtime"
        f" (this run has {settings.SETTINGS_MODULE}; `make test` runs both)"
    )


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """Without DATABASE_URL, point the settings' placeholder at the embedded PostgreSQL (started
    now, not when the settings were imported)."""
    database = settings.DATABASES["default"]
    if not database.get("HOST"):
        database.update(database_settings())


@pytest.fixture(scope="session")
def shared_server(django_db_setup: None) -> Iterator[LiveServer]:
    """One uvicorn, in a thread of this process, for the tests that need no special settings."""
    with LiveServer() as live:
        yield live


@pytest.fixture
def server(transactional_db: None, shared_server: LiveServer) -> Iterator[LiveServer]:
    """uvicorn serving the test views on the test database (which the test commits to).

    The test's streams must have ended when it ends: counters are per process, so a stream still
    closing would be counted by the next test.
    """
    views.render_count = 0
    yield shared_server
    wait_for(
        lambda: stats()["open_streams"] == 0 and not stats()["subscriptions"],
        timeout=10,
        what="the test's streams to end",
    )
