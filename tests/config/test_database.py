"""The demo picks ``DATABASE_URL`` when set and the embedded PostgreSQL when not."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from config.database import database_settings

ROOT = Path(__file__).resolve().parents[2]


def test_database_url_wins() -> None:
    config = database_settings(
        ROOT, {"DATABASE_URL": "postgres://alice:secret@db.example:6543/desk"}
    )
    assert config["ENGINE"] == "realtime.db.postgresql"  # Django's, with a pool that fails fast
    assert (config["HOST"], config["PORT"], config["NAME"], config["USER"]) == (
        "db.example",
        6543,
        "desk",
        "alice",
    )


def test_database_url_must_be_postgresql() -> None:
    with pytest.raises(ImproperlyConfigured, match="must point at PostgreSQL"):
        database_settings(ROOT, {"DATABASE_URL": "sqlite:///db.sqlite3"})


def test_embedded_server_when_unset() -> None:
    config = database_settings(ROOT, {})
    assert config["ENGINE"] == "realtime.db.postgresql"
    assert config["HOST"].startswith("/")  # a Unix socket directory, never a TCP port
    with psycopg.connect(
        host=config["HOST"], port=config["PORT"], user="postgres", dbname="postgres"
    ) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_demo_adds_a_pool() -> None:
    config = database_settings(ROOT, {"DATABASE_URL": "postgres://a@db.example/desk"})
    assert config["OPTIONS"]["pool"]["max_size"] == 20
    assert config["CONN_HEALTH_CHECKS"] is True


@pytest.mark.django_db
def test_database_is_postgresql_and_notify_round_trips() -> None:
    assert connection.vendor == "postgresql"
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as listener:
        listener.execute("LISTEN foundation_check")
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify('foundation_check', 'hello')")
        # pytest-django's test transaction holds the NOTIFY until commit; send one outside it.
        with psycopg.connect(**params, autocommit=True) as sender:
            sender.execute("SELECT pg_notify('foundation_check', 'committed')")
        note = next(listener.notifies(timeout=5, stop_after=1))
    assert (note.channel, note.payload) == ("foundation_check", "committed")
