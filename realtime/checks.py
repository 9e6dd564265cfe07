"""System checks, ids ``realtime.E00x`` / ``realtime.W00x``; each is listed in docs/reference.md."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured


def register() -> None:
    """Register every check of the app (called from ``RealtimeConfig.ready``)."""
    checks.register(check_settings)
    checks.register(check_app_order)
    # Not tagged "database": it reads settings only, so plain `manage.py check` runs it too.
    checks.register(check_database)
    checks.register(check_asgi)


def check_settings(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[checks.CheckMessage]:
    """E001: ``settings.REALTIME`` must be valid."""
    from realtime.conf import get_config

    try:
        get_config()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), hint="Fix settings.REALTIME.", id="realtime.E001")]
    return []


def check_app_order(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[checks.CheckMessage]:
    """W001: ``realtime`` must come before ``django.contrib.staticfiles``.

    Django takes a management command from the first app that defines it, and both apps define
    ``runserver``; only realtime's serves ASGI, which streams need.
    """
    apps = list(settings.INSTALLED_APPS)
    names = [_app_name(entry) for entry in apps]
    if (
        "django.contrib.staticfiles" in names
        and "realtime" in names
        and names.index("realtime") > names.index("django.contrib.staticfiles")
    ):
        return [
            checks.Warning(
                "'realtime' is listed after 'django.contrib.staticfiles' in INSTALLED_APPS, "
                "so `manage.py runserver` is the WSGI one, which cannot stream.",
                hint="Move 'realtime' above 'django.contrib.staticfiles'.",
                id="realtime.W001",
            )
        ]
    return []


def check_database(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[checks.CheckMessage]:
    """E002: the PostgreSQL backend needs its database alias to be PostgreSQL."""
    from realtime.conf import get_config

    try:
        config = get_config()
    except ImproperlyConfigured:
        return []  # reported by E001
    if not config.BACKEND.startswith("realtime.relay.postgres."):
        return []
    for key, alias in (("DATABASE", config.DATABASE), ("LISTEN_DATABASE", config.LISTEN_DATABASE)):
        if alias is not None and alias not in settings.DATABASES:
            return [
                checks.Error(
                    f"REALTIME[{key!r}] is {alias!r}, which is not in DATABASES.",
                    hint="Name an alias from DATABASES.",
                    id="realtime.E002",
                )
            ]
    database = settings.DATABASES[config.DATABASE]
    engine = str(database.get("ENGINE", ""))
    if "postgresql" not in engine and "postgis" not in engine:
        return [
            checks.Error(
                f"The relay needs PostgreSQL LISTEN/NOTIFY, but DATABASES[{config.DATABASE!r}] uses {engine!r}.",
                hint="Use django.db.backends.postgresql, or set REALTIME['BACKEND'] to "
                "'realtime.relay.memory.MemoryBackend' for a single process.",
                id="realtime.E002",
            )
        ]
    return []


def check_asgi(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[checks.CheckMessage]:
    """W002: streams need an ASGI server, so ``ASGI_APPLICATION`` should be set."""
    if not getattr(settings, "ASGI_APPLICATION", None):
        return [
            checks.Warning(
                "ASGI_APPLICATION is not set; live streams need an ASGI server.",
                hint="Set ASGI_APPLICATION = 'yourproject.asgi.application' and serve with uvicorn "
                "(`manage.py runserver` does when 'realtime' is installed).",
                id="realtime.W002",
            )
        ]
    return []


def _app_name(entry: str) -> str:
    """Map an INSTALLED_APPS entry (module or AppConfig path) to its app name."""
    from django.apps import apps

    for config in apps.get_app_configs():
        if entry in (config.name, f"{type(config).__module__}.{type(config).__qualname__}"):
            return config.name
    return entry
