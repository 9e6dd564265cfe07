"""The public import surface is small, pinned, documented, and costs nothing to import."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest

import realtime
import realtime.testing
from tests.helpers import ROOT, server_env

PUBLIC = [
    "CommandError",
    "CommandView",
    "InvalidTopic",
    "PayloadTooLarge",
    "StreamView",
    "apublish",
    "broadcast",
    "command",
    "publish",
    "stats",
]


def test_all_is_pinned() -> None:
    assert realtime.__all__ == PUBLIC


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_resolves_and_is_documented(name: str) -> None:
    value = getattr(realtime, name)
    assert not inspect.ismodule(value), f"realtime.{name} is a module"
    assert inspect.getdoc(value), f"realtime.{name} has no docstring"
    assert name in dir(realtime)


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        realtime.nope  # type: ignore[attr-defined]  # noqa: B018


def test_star_import_gives_exactly_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from realtime import *", namespace)
    assert sorted(k for k in namespace if not k.startswith("__")) == PUBLIC


def test_testing_helpers_are_pinned_and_documented() -> None:
    assert sorted(realtime.testing.__all__) == [
        "CommandResponse",
        "EventStream",
        "LiveServer",
        "SSEEvent",
        "capture_publishes",
        "open_stream",
        "parse_sse",
        "post_command",
        "tab_id",
    ]
    for name in realtime.testing.__all__:
        assert inspect.getdoc(getattr(realtime.testing, name)), name


PROBE = """
import json, sys, threading
before = set(sys.modules)
import realtime
import realtime.testing
after = set(sys.modules)
from django.conf import settings
print(json.dumps({
    "new": sorted(after - before),
    "threads": threading.active_count(),
    "settings_configured": settings.configured,
}))
"""


def test_importing_realtime_does_nothing() -> None:
    env = server_env()
    env.pop("DJANGO_SETTINGS_MODULE")
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    report = json.loads(result.stdout)
    new = report["new"]
    assert report["threads"] == 1
    assert report["settings_configured"] is False  # no setting was read
    for module in (
        "django.contrib.auth.models",
        "django.db.models",
        "psycopg",
        "realtime.streams",
        "realtime.commands",
        "realtime.relay.postgres",
        "realtime.relay.hub",
        "uvicorn",
    ):
        assert module not in new, f"import realtime imported {module}"


SUBMODULES_FIRST = """
import django
django.setup()
import realtime.broadcasting, realtime.metrics, realtime.relay.publish, realtime.commands
import realtime
from realtime import broadcast, stats
import inspect
assert inspect.isfunction(realtime.broadcast) and inspect.isfunction(realtime.stats)
assert inspect.isfunction(broadcast) and inspect.isfunction(stats)
print("ok")
"""


def test_public_functions_survive_their_modules_being_imported() -> None:
    # Importing the modules that define them must not replace the public functions.
    result = subprocess.run(
        [sys.executable, "-c", SUBMODULES_FIRST],
        cwd=ROOT,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.stdout.strip() == "ok", result.stderr
