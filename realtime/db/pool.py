"""A connection pool that neither waits for dead connections nor for a database that is down.

psycopg-pool, as Django configures it, lends a connection after a health check; a connection that
fails the check is thrown away and the *next* check waits first (1 s, then 2 s, 4 s...), and while
PostgreSQL is unreachable a request waits the whole pool ``timeout`` for a connection the pool's
background workers retry with the same growing backoff. After a failover or
``pg_terminate_backend`` (every pooled connection dead at once) that meant several requests in a
row each waiting 10 s and failing with ``PoolTimeout``.

:class:`ResilientPool` changes two things, with psycopg-pool's public methods only:

- a lent connection is checked here, and a dead one is discarded and the next one tried at once,
  without waiting (the pool replaces the discarded ones in the background);
- while no connection is idle, the wait is cut in short slices; when the pool's attempt to open
  a new connection fails during the wait (the server is down), the request fails at once with a
  :class:`psycopg.OperationalError` that says so, instead of waiting out the timeout. With
  ``reconnect_timeout`` short the pool gives up each failed attempt at once, so the next request
  tries again: the first request after PostgreSQL is back gets a connection.

While every connection is merely busy (no attempt failed), requests queue up to ``timeout`` as
before.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

#: How long a waiting request sleeps between looks at the pool's state.
SLICE = 0.05


class ResilientPool(ConnectionPool):
    """psycopg-pool's ``ConnectionPool``, failing fast and recovering at once (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The check runs in getconn below, where a failed one costs no backoff sleep.
        self._lend_check = kwargs.pop("check", None) or ConnectionPool.check_connection
        kwargs.setdefault("reconnect_timeout", 0.2)
        super().__init__(*args, check=None, **kwargs)
        self._failures = 0
        self._failures_lock = threading.Lock()

    def reconnect_failed(self) -> None:
        """The pool gave up an attempt to connect: waiting requests fail at once."""
        with self._failures_lock:
            self._failures += 1
        super().reconnect_failed()

    def getconn(self, timeout: float | None = None) -> Any:
        """A checked connection; raises ``OperationalError`` at once while the server is down."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        failures = self._failures
        while True:
            remaining = deadline - time.monotonic()
            try:
                conn = super().getconn(timeout=max(0.001, min(SLICE, remaining)))
            except PoolTimeout:
                if self._failures != failures:
                    raise psycopg.OperationalError(
                        f"the database is unreachable: the pool {self.name!r} could not open a "
                        "connection (see the psycopg.pool log for the reason)"
                    ) from None
                if time.monotonic() >= deadline:
                    raise
                continue
            try:
                self._lend_check(conn)
            except psycopg.Error:
                conn.close()  # so the pool discards it (and opens a new one in the background)
                self.putconn(conn)
                continue
            return conn
