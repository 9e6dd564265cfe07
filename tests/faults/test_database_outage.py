"""The database goes away and comes back: how long do requests fail?

What a failover or ``pg_terminate_backend`` does to the demo's connection pool: every connection it
holds is dead. Once PostgreSQL accepts connections again, the next request must succeed (at most
about a second of outage); while PostgreSQL is down, requests must fail fast (well under a
second) with a clear error, instead of each waiting for the pool's timeout.
"""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from realtime.testing import post_command
from tests.faults.postgres import PrivatePostgres
from tests.faults.test_faults import ADD, libpq_dsn
from tests.helpers import ServerProcess

pytestmark = pytest.mark.slow


def attempt(url: str, name: str) -> tuple[int, float]:
    """POST a command that writes; return its status and how long it took."""
    started = time.monotonic()
    try:
        status = post_command(url + ADD, {"name": name}, timeout=30).status
    except OSError:
        status = 0
    return status, time.monotonic() - started


def outage(url: str, since: float, name: str, limit: float = 30.0) -> tuple[float, list[float]]:
    """Retry a command until it succeeds: seconds from ``since``, and each failure's duration."""
    failures: list[float] = []
    for i in range(1000):
        status, took = attempt(url, f"{name} {i}")
        if status == 204:
            return time.monotonic() - since, failures
        failures.append(took)
        assert time.monotonic() - since < limit, f"still failing after {limit}s: {failures}"
    raise AssertionError("unreachable")


def test_pool_recovers_at_once_after_every_backend_is_terminated(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    dsn = libpq_dsn(private_postgres.settings())
    with ServerProcess(private_postgres.url(), log_dir=tmp_path) as server:
        for i in range(5):
            assert attempt(server.url, f"warm-up {i}")[0] == 204
        with psycopg.connect(dsn, autocommit=True) as conn:
            killed = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
            ).fetchone()
        assert killed
        assert killed[0] >= 1
        took, failures = outage(server.url, time.monotonic(), "after the kill")
        print(f"outage after terminating every backend: {took:.2f}s, failures {failures}")
        assert took <= 1.0, f"{took:.2f}s of outage ({len(failures)} failed requests)"


def test_requests_fail_fast_while_down_and_recover_at_once(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    with ServerProcess(private_postgres.url(), log_dir=tmp_path) as server:
        for i in range(3):
            assert attempt(server.url, f"warm-up {i}")[0] == 204
        private_postgres.stop()
        try:
            down = [attempt(server.url, f"while down {i}") for i in range(3)]
            print(f"while down: {down}")
            assert all(status >= 500 for status, _ in down), down
            assert max(took for _, took in down) < 1.0, down
        finally:
            private_postgres.start_again()
        took, failures = outage(server.url, time.monotonic(), "after the restart")
        print(f"outage after PostgreSQL was back: {took:.2f}s, failures {failures}")
        assert took <= 1.0, f"{took:.2f}s of outage ({len(failures)} failed requests)"
