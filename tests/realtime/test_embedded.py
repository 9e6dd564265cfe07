"""``realtime.embedded``: DATABASE_URL when set, else an embedded PostgreSQL; one-line errors."""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured

from realtime import embedded
from realtime.embedded import database, embedded_database, main, stop, url_database


def test_database_url_wins() -> None:
    config = database("unused", {"DATABASE_URL": "postgres://alice:secret@db.example:6543/desk"})
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"], config["USER"]) == (
        "db.example",
        6543,
        "desk",
        "alice",
    )
    assert config["PASSWORD"] == "secret"


def test_database_url_must_be_postgresql() -> None:
    with pytest.raises(ImproperlyConfigured, match="must point at PostgreSQL"):
        url_database("sqlite:///db.sqlite3")


def test_missing_extra_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for module in ("pgserver", "pgserver.postgres_server"):
        monkeypatch.setitem(sys.modules, module, None)  # as if the extra were not installed
    with pytest.raises(ImproperlyConfigured, match=r"django-realtime-cqrs\[embedded\]") as info:
        database(tmp_path / "pgdata", {})
    assert "DATABASE_URL" in str(info.value)
    assert "\n" not in str(info.value)
    (tmp_path / "pgdata").mkdir()
    (tmp_path / "pgdata" / "postmaster.pid").write_text("1\n")
    with pytest.raises(ImproperlyConfigured, match=r"\[embedded\]"):
        stop(tmp_path / "pgdata")


def test_unstartable_server_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ImproperlyConfigured, match="could not start") as info:
        embedded_database(tmp_path / "missing-parent" / "pgdata")
    assert "\n" not in str(info.value)


@pytest.fixture
def folder() -> Iterator[Path]:
    # Not tmp_path: when the tests run as root, the server runs as the `pgserver` user, which
    # must be able to reach the folder.
    path = Path(tempfile.mkdtemp(prefix="realtime-embedded-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        stop(path / "pgdata")
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_starts_serves_and_stops(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pgdata = folder / "pgdata"
    config = database(pgdata, {})
    assert config["HOST"].startswith("/")  # a Unix socket directory, never a TCP port
    connect = {"host": config["HOST"], "port": config["PORT"], "user": "postgres"}
    with psycopg.connect(**connect, dbname="postgres") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert embedded_database(pgdata) == config  # a second call joins the running server

    assert main(["stop", str(pgdata)]) == 0
    assert "Stopped the embedded PostgreSQL" in capsys.readouterr().out
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(**connect, dbname="postgres", connect_timeout=2)
    assert stop(pgdata) is False
    assert main(["stop", str(pgdata)]) == 0
    assert "No embedded PostgreSQL was running" in capsys.readouterr().out


def test_stop_without_a_server(tmp_path: Path) -> None:
    assert stop(tmp_path) is False


def test_main_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["start"]) == 2
    assert "usage: python -m realtime.embedded stop <folder>" in capsys.readouterr().err


PROBE = """
import json, sys
before = set(sys.modules)
import realtime.embedded
from django.conf import settings
print(json.dumps({"new": sorted(set(sys.modules) - before), "configured": settings.configured}))
"""


def test_importing_it_starts_nothing() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    report = json.loads(result.stdout)
    assert report["configured"] is False
    for module in ("pgserver", "dj_database_url", "psycopg"):
        assert module not in report["new"]


def test_public_names_are_pinned_and_documented() -> None:
    assert sorted(embedded.__all__) == ["database", "embedded_database", "stop", "url_database"]
    for name in embedded.__all__:
        assert inspect.getdoc(getattr(embedded, name)), name
