"""System checks: each id fires when it should and only then."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from realtime import checks

APPS_AFTER_STATICFILES = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "realtime",
]


def ids(messages: list[object]) -> list[str]:
    return [message.id for message in messages]  # type: ignore[attr-defined]


def test_the_test_settings_pass_every_check() -> None:
    call_command("check", "--fail-level", "WARNING", "--database", "default")


@override_settings(INSTALLED_APPS=APPS_AFTER_STATICFILES)
def test_w001_realtime_after_staticfiles() -> None:
    [warning] = checks.check_app_order()
    assert warning.id == "realtime.W001"
    assert "Move 'realtime' above" in (warning.hint or "")


@override_settings(
    INSTALLED_APPS=[
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.staticfiles.apps.StaticFilesConfig",
        "realtime.apps.RealtimeConfig",
    ]
)
def test_w001_sees_apps_listed_by_their_config_class() -> None:
    assert ids(checks.check_app_order()) == ["realtime.W001"]


def test_w001_quiet_in_right_order() -> None:
    assert checks.check_app_order() == []


@override_settings(REALTIME={"HEARTBEAT": -1})
def test_e001_invalid_settings() -> None:
    [error] = checks.check_settings()
    assert error.id == "realtime.E001"
    assert "HEARTBEAT" in error.msg


@override_settings(REALTIME={"NOPE": 1})
def test_e001_unknown_key() -> None:
    assert ids(checks.check_settings()) == ["realtime.E001"]


SQLITE = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
IGNORE_DATABASES_OVERRIDE = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")


@IGNORE_DATABASES_OVERRIDE
@override_settings(DATABASES=SQLITE)
def test_e002_relay_needs_postgresql() -> None:
    [error] = checks.check_database()
    assert error.id == "realtime.E002"
    assert "MemoryBackend" in (error.hint or "")


@override_settings(REALTIME={"HEARTBEAT": -1, "DATABASE": "missing"})
def test_e002_leaves_invalid_settings_to_e001() -> None:
    assert checks.check_database() == []


@override_settings(REALTIME={"DATABASE": "missing"})
def test_e002_unknown_alias() -> None:
    assert ids(checks.check_database()) == ["realtime.E002"]


@override_settings(REALTIME={"LISTEN_DATABASE": "missing"})
def test_e002_unknown_listen_alias() -> None:
    [error] = checks.check_database()
    assert error.id == "realtime.E002"
    assert "LISTEN_DATABASE" in error.msg


@IGNORE_DATABASES_OVERRIDE
@override_settings(
    DATABASES=SQLITE,
    REALTIME={"BACKEND": "realtime.relay.memory.MemoryBackend"},
)
def test_e002_not_for_memory_backend() -> None:
    assert checks.check_database() == []


@override_settings(ASGI_APPLICATION=None)
def test_w002_no_asgi_application() -> None:
    assert ids(checks.check_asgi()) == ["realtime.W002"]


def test_check_command_fails_on_errors() -> None:
    with override_settings(REALTIME={"CHANNEL": ""}), pytest.raises(SystemCheckError):
        call_command("check")


@IGNORE_DATABASES_OVERRIDE
@override_settings(DATABASES=SQLITE)
def test_plain_check_command_reports_e002_for_sqlite() -> None:
    # Not only with --database or at migrate: `manage.py check` on SQLite says it at once.
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    with pytest.raises(SystemCheckError, match="E002"):
        call_command("check")
