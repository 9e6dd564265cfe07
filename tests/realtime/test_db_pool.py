"""The demo's pool: dead connections replaced without waiting, an unreachable server fails fast."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from realtime.db.pool import ResilientPool


def test_unreachable_server_fails_at_once(tmp_path: Path) -> None:
    pool = ResilientPool(
        kwargs={"host": str(tmp_path), "dbname": "nothing", "connect_timeout": 2},
        min_size=0,
        max_size=2,
        timeout=10,
        open=True,
    )
    try:
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError, match="the database is unreachable"):
            pool.getconn()
        assert time.monotonic() - started < 1.0
    finally:
        pool.close()


@pytest.mark.django_db
def test_dead_connections_are_replaced_without_waiting() -> None:
    params = {**connection.get_connection_params(), "autocommit": True}
    pool = ResilientPool(kwargs=params, min_size=3, max_size=3, timeout=10, open=True)
    try:
        pool.wait(10)
        lent = [pool.getconn() for _ in range(3)]
        pids = [conn.info.backend_pid for conn in lent]
        for conn in lent:
            pool.putconn(conn)
        with psycopg.connect(**params) as admin:
            for pid in pids:
                admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        started = time.monotonic()
        conn = pool.getconn()
        took = time.monotonic() - started
        try:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.info.backend_pid not in pids
        finally:
            pool.putconn(conn)
        assert took < 1.0, f"{took:.2f}s to replace dead connections"
    finally:
        pool.close()
