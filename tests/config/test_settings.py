"""The demo's settings are safe by default: no DEBUG unless asked, no public key without DEBUG,
and ``check --deploy`` clean with the production variables docs/deploying.md lists."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest

from tests.helpers import ROOT

#: The production variables of docs/deploying.md ("Deploy settings"), with example values.
PRODUCTION = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "desk.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://desk.example.com",
    "DJANGO_SECURE_PROXY_SSL_HEADER": "1",
    "DJANGO_HSTS_SECONDS": "31536000",
    "DJANGO_HSTS_INCLUDE_SUBDOMAINS": "1",
    "DJANGO_HSTS_PRELOAD": "1",
    "DATABASE_URL": "postgres://desk@db.invalid:5432/desk",  # never connected to by these checks
}
PROBE = """
import json
from django.conf import settings
print(json.dumps({
    "DEBUG": settings.DEBUG,
    "SECRET_KEY": settings.SECRET_KEY,
    "SECURE_SSL_REDIRECT": settings.SECURE_SSL_REDIRECT,
    "SESSION_COOKIE_SECURE": settings.SESSION_COOKIE_SECURE,
}))
"""


def demo_env(**variables: str) -> dict[str, str]:
    """A shell with nothing of the test run's settings: the demo's ``config.settings``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "REALTIME_")) and key != "DATABASE_URL"
    }
    env["PYTHONPATH"] = str(ROOT)
    env["DATABASE_URL"] = PRODUCTION["DATABASE_URL"]
    env.update(variables)
    return env


def run(args: list[str], **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=demo_env(**variables),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def settings_of(**variables: str) -> dict[str, object]:
    completed = run(["manage.py", "shell", "-c", PROBE], **variables)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "variables",
    [
        {},
        {"DJANGO_DEBUG": "0"},
        {"DJANGO_SECRET_KEY": "django-insecure-demo-only-change-me"},
        {"DJANGO_SECRET_KEY": "django-insecure-anything-else"},
        {"DJANGO_SECRET_KEY": ""},
    ],
)
def test_without_debug_the_demo_key_is_refused(variables: dict[str, str]) -> None:
    completed = run(["manage.py", "check"], **variables)
    assert completed.returncode != 0
    assert "ImproperlyConfigured: DEBUG is off, so set DJANGO_SECRET_KEY" in completed.stderr


def test_the_asgi_application_refuses_too() -> None:
    completed = run(["-c", "import config.asgi"])
    assert completed.returncode != 0
    assert "set DJANGO_SECRET_KEY" in completed.stderr


def test_debug_only_when_asked() -> None:
    development = settings_of(DJANGO_DEBUG="1")
    assert development["DEBUG"] is True
    assert development["SECRET_KEY"] == "django-insecure-demo-only-change-me"
    assert development["SECURE_SSL_REDIRECT"] is False
    key = secrets.token_urlsafe(50)
    production = settings_of(DJANGO_SECRET_KEY=key)
    assert production == {
        "DEBUG": False,
        "SECRET_KEY": key,
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_SECURE": True,
    }


def test_make_run_asks_for_debug() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "run: export DJANGO_DEBUG ?= 1" in makefile


def test_check_deploy_is_clean_with_the_documented_production_variables() -> None:
    completed = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "no issues" in completed.stdout
    deploying = (ROOT / "docs" / "deploying.md").read_text()
    for name in PRODUCTION:
        assert name in deploying, f"{name} is not documented in docs/deploying.md"
