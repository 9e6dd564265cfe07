"""The demo's database: ``DATABASE_URL`` when set, else an embedded PostgreSQL in ``.pgdata/``.

Both come from :func:`realtime.embedded.database` (any project can use it the same way); the demo
adds a connection pool. The embedded server is started by the first process that needs it and
left running, so every later process (runserver's reloader, a shell, the tests) shares it;
``make stop`` stops it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from realtime.embedded import database


def database_settings(
    base_dir: Path, environ: os._Environ[str] | dict[str, str] = os.environ
) -> dict[str, Any]:
    """Return the ``DATABASES["default"]`` dict for the demo project."""
    return with_pool(database(base_dir / ".pgdata", environ))


def with_pool(config: dict[str, Any]) -> dict[str, Any]:
    """Use a connection pool (psycopg-pool) that fails fast and recovers at once.

    Under ASGI each request runs its synchronous part on a thread of its own, so a persistent
    connection (``CONN_MAX_AGE``) is never reused; without a pool every command would open a
    new connection. The pool lends one per request and per render instead.

    ``realtime.db.postgresql`` is Django's PostgreSQL backend with :class:`realtime.db.pool.ResilientPool`:
    a pooled connection killed by a failover or ``pg_terminate_backend`` is replaced at once
    (Django's pool checks it too, but waits 1 s, 2 s, 4 s... between dead ones), and while
    PostgreSQL is down a request fails at once with a clear ``OperationalError`` instead of
    waiting out ``timeout``; the first request after PostgreSQL is back succeeds.
    """
    try:
        import psycopg_pool  # noqa: F401
    except ImportError:
        return config
    options = {**config.get("OPTIONS", {})}
    options.setdefault("pool", {"min_size": 1, "max_size": 20, "timeout": 10})
    return {
        **config,
        "ENGINE": "realtime.db.postgresql",
        "OPTIONS": options,
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": True,
    }
