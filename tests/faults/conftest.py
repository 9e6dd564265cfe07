"""Fixtures of the fault tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.faults.postgres import PrivatePostgres
from tests.helpers import ROOT, SERVER_SETTINGS


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    postgres = PrivatePostgres()
    try:
        postgres.start()
        env = dict(
            os.environ,
            DATABASE_URL=postgres.url(),
            DJANGO_SETTINGS_MODULE=SERVER_SETTINGS,
            PYTHONPATH=str(ROOT),
        )
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=120,
            capture_output=True,
        )
        yield postgres
    finally:
        postgres.destroy()
