"""Settings: one dict, ``settings.REALTIME``, merged over documented defaults.

Read through :func:`get_config`, cached, and cleared on Django's ``setting_changed`` so
``override_settings(REALTIME=...)`` works in tests. Unknown keys and wrong types raise
:class:`~django.core.exceptions.ImproperlyConfigured` with the key named.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from realtime.request_data import SIGNAL_NAME

#: The Datastar browser runtime shipped in the app's static files (see its README.md beside it):
#: what ``{% datastar_script %}`` loads when ``DATASTAR_URL`` is ``None``.
BUNDLED_DATASTAR = "realtime/datastar/datastar.js"

#: Subresource Integrity hashes of Datastar builds, by the exact URL ``DATASTAR_URL`` names: the
#: tag emits the hash when ``DATASTAR_INTEGRITY`` is unset. Only hashes computed here from the bytes
#: themselves belong in it. The official CDN builds could not be downloaded where this table was
#: made, so it holds none of them yet: with a CDN URL, set ``DATASTAR_INTEGRITY`` yourself. (The
#: bundled file gets no hash: ``ManifestStaticFilesStorage`` rewrites its source-map line.)
KNOWN_DATASTAR_INTEGRITY: dict[str, str] = {}

#: sha384 of the bundled file, for whoever serves that exact file from another host.
BUNDLED_DATASTAR_INTEGRITY = (
    "sha384-+VX0eVrYA9YR1ZIc3w8hvJxTB/toZLSSV6ldjZX1A8vooluHRJWne19iZ8zXQU/B"
)


@dataclass(frozen=True)
class Config:
    """The effective settings. Each field is a key of ``settings.REALTIME``."""

    #: Dotted path of the relay backend class.
    BACKEND: str = "realtime.relay.postgres.PostgresBackend"
    #: The database alias whose connection ``publish`` runs on and the listener copies.
    DATABASE: str = "default"
    #: The alias whose settings the listener copies, when it must differ from ``DATABASE`` (e.g.
    #: ``DATABASE`` goes through PgBouncer in transaction mode, which cannot LISTEN). ``None``:
    #: the same as ``DATABASE``.
    LISTEN_DATABASE: str | None = None
    #: The one PostgreSQL NOTIFY channel that carries every topic of the project.
    CHANNEL: str = "realtime"
    #: Seconds between SSE comment lines that keep idle streams alive through proxies.
    HEARTBEAT: float = 15.0
    #: Seconds a client may leave an event unread before its stream is closed.
    STALL_TIMEOUT: float = 30.0
    #: First and longest delay, in seconds, between the listener's reconnection attempts.
    RECONNECT_DELAY: float = 0.1
    RECONNECT_MAX_DELAY: float = 5.0
    #: Browser runtime: the URL ``{% datastar_script %}`` loads (``None``: the bundled file,
    #: through ``{% static %}``), and its SRI hash (``None``: the known hash of that URL, if any).
    DATASTAR_URL: str | None = None
    DATASTAR_INTEGRITY: str | None = None
    #: The Datastar signal that carries a tab's private id (must not start with "_").
    TAB_SIGNAL: str = "tab"
    #: Stream compression: "gzip" (shared-window gzip, almost no memory per stream: see
    #: realtime.encoding), "middleware" (leave it to a compression middleware: one compressor per
    #: stream, 200 KB-1 MB each) or "off".
    STREAM_COMPRESSION: str = "gzip"
    #: Largest signals (JSON bytes) a stream accepts; they travel in its URL, and a stream holds
    #: them (and renders by them) while it is open.
    MAX_STREAM_SIGNALS_BYTES: int = 4096
    #: Deepest nesting of objects and arrays accepted in signals, by streams and commands.
    MAX_SIGNALS_DEPTH: int = 8
    #: Seconds after which a stream ends cleanly (with its authority re-checked first) and the
    #: client reconnects through the full request path; 0 for never. Each stream's age is
    #: spread by up to a tenth, so streams opened together do not all reconnect together.
    MAX_STREAM_AGE: float = 1800.0
    #: Open streams one client (a user, else a session, else an address) may hold per process;
    #: 0 for no cap. Past it new streams get 429 (see realtime.limits).
    MAX_STREAMS_PER_CLIENT: int = 100
    #: Open streams per process; 0 for no cap.
    MAX_STREAMS: int = 20_000
    #: The request header that holds the client's address behind a trusted reverse proxy (e.g.
    #: "X-Forwarded-For": its last address counts), or None to use REMOTE_ADDR.
    CLIENT_ADDRESS_HEADER: str | None = None
    #: Presence (realtime.presence): seconds between a process's heartbeats (one write each)...
    PRESENCE_HEARTBEAT: float = 2.0
    #: ...and after which a process that stopped beating (killed) counts as gone: its entries are
    #: ignored by reads at once and deleted by the next heartbeat of any other process.
    PRESENCE_TTL: float = 6.0
    #: Seconds a process gathers joins and leaves before writing them in one transaction.
    PRESENCE_FLUSH_INTERVAL: float = 0.05
    #: A secret that lets a request read the Prometheus metrics (``Authorization: Bearer
    #: <token>``) without a staff session (see realtime.prometheus); None: staff only.
    METRICS_TOKEN: str | None = None
    #: Threads that run commands under realtime.handler (each command's middleware and view in
    #: one call); None: as many as the render pool, Python's default executor size.
    COMMAND_THREADS: int | None = None


_NUMBER_KEYS = {
    "HEARTBEAT",
    "STALL_TIMEOUT",
    "RECONNECT_DELAY",
    "RECONNECT_MAX_DELAY",
    "MAX_STREAM_AGE",
    "PRESENCE_HEARTBEAT",
    "PRESENCE_TTL",
    "PRESENCE_FLUSH_INTERVAL",
}
_COUNT_KEYS = {"MAX_STREAM_SIGNALS_BYTES", "MAX_SIGNALS_DEPTH"}
_CAP_KEYS = {"MAX_STREAMS_PER_CLIENT", "MAX_STREAMS"}


def _validate(values: dict[str, Any]) -> None:
    for key in _NUMBER_KEYS:
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ImproperlyConfigured(
                f"REALTIME[{key!r}] must be a non-negative number of seconds."
            )
    for key in _COUNT_KEYS:
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ImproperlyConfigured(f"REALTIME[{key!r}] must be a positive whole number.")
    for key in _CAP_KEYS:
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ImproperlyConfigured(
                f"REALTIME[{key!r}] must be a whole number of streams (0 for no cap)."
            )
    threads = values["COMMAND_THREADS"]
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise ImproperlyConfigured(
            "REALTIME['COMMAND_THREADS'] must be None or a positive whole number of threads."
        )
    if not 0 < values["PRESENCE_HEARTBEAT"] < values["PRESENCE_TTL"]:
        raise ImproperlyConfigured(
            "REALTIME['PRESENCE_TTL'] must be longer than REALTIME['PRESENCE_HEARTBEAT'] (> 0): "
            "at least twice as long, so one late heartbeat does not make a live process gone."
        )
    header = values["CLIENT_ADDRESS_HEADER"]
    if header is not None and (not isinstance(header, str) or not header):
        raise ImproperlyConfigured(
            "REALTIME['CLIENT_ADDRESS_HEADER'] must be None or a header name."
        )
    for key in ("BACKEND", "DATABASE", "CHANNEL", "TAB_SIGNAL"):
        if not isinstance(values[key], str) or not values[key]:
            raise ImproperlyConfigured(f"REALTIME[{key!r}] must be a non-empty string.")
    for key in ("DATASTAR_URL", "DATASTAR_INTEGRITY"):
        if values[key] is not None and (not isinstance(values[key], str) or not values[key]):
            raise ImproperlyConfigured(f"REALTIME[{key!r}] must be None or a non-empty string.")
    if not SIGNAL_NAME.fullmatch(values["TAB_SIGNAL"]):
        raise ImproperlyConfigured(
            "REALTIME['TAB_SIGNAL'] must be letters and digits, not starting with '_'."
        )
    if len(values["CHANNEL"].encode()) > 63:
        raise ImproperlyConfigured("REALTIME['CHANNEL'] must fit PostgreSQL's 63-byte identifiers.")
    if values["LISTEN_DATABASE"] is not None and (
        not isinstance(values["LISTEN_DATABASE"], str) or not values["LISTEN_DATABASE"]
    ):
        raise ImproperlyConfigured("REALTIME['LISTEN_DATABASE'] must be None or a database alias.")
    token = values["METRICS_TOKEN"]
    if token is not None and (not isinstance(token, str) or len(token) < 16):
        raise ImproperlyConfigured(
            "REALTIME['METRICS_TOKEN'] must be None or a secret string of 16 characters or more."
        )
    if values["STREAM_COMPRESSION"] not in ("gzip", "middleware", "off"):
        raise ImproperlyConfigured(
            "REALTIME['STREAM_COMPRESSION'] must be 'gzip', 'middleware' or 'off'."
        )


@cache
def get_config() -> Config:
    """Return the effective settings, validated once and cached."""
    user = getattr(settings, "REALTIME", {})
    if not isinstance(user, dict):
        raise ImproperlyConfigured("settings.REALTIME must be a dict.")
    known = {f.name for f in fields(Config)}
    unknown = sorted(set(user) - known)
    if unknown:
        raise ImproperlyConfigured(
            f"Unknown key(s) in settings.REALTIME: {', '.join(unknown)}. Known: {', '.join(sorted(known))}."
        )
    values = {f.name: getattr(Config, f.name) for f in fields(Config)} | user
    _validate(values)
    return Config(**values)


def reload_config(*, setting: str, **kwargs: Any) -> None:
    """``setting_changed`` receiver: forget the cached settings when ``REALTIME`` changes."""
    if setting == "REALTIME":
        get_config.cache_clear()
