"""``stats()``: a snapshot of this process's counters and subscriptions, for operators and benchmarks."""

from __future__ import annotations

import time
from dataclasses import fields
from typing import Any

from realtime.counters import counters
from realtime.relay.registry import subscriptions_by_topic


def stats() -> dict[str, Any]:
    """A snapshot of this process's counters, plus subscriptions per topic.

    Keys: ``open_streams``, ``subscriptions`` (topic -> count), ``notifications_received``,
    ``publishes``, ``renders``, ``renders_shared``, ``render_errors``, ``listener_connects``,
    ``listener_reconnects``, ``listener_misconfigured`` (the listener's test notification never
    came back: see :mod:`realtime.relay.postgres`), ``listening`` (listener connections up now),
    ``resyncs``,
    ``events_sent``, ``bytes_sent`` (on the wire), ``bytes_raw`` (before compression),
    ``heartbeats_sent``, ``stalled_disconnects``, ``seconds_since_last_notification`` (``None``
    before the first), ``notification_latency`` (a histogram: ``buckets`` as ``(bound,
    cumulative count)``, ``count``, ``sum``), ``views`` (view name -> its counters, the same
    names, with ``render_seconds`` a histogram) and ``commands`` (name -> ``by_status`` and
    ``seconds``, a histogram).
    """
    snapshot: dict[str, Any] = {
        name: getattr(counters, name)
        for name in (
            "open_streams",
            "notifications_received",
            "publishes",
            "renders",
            "renders_shared",
            "render_errors",
            "listener_connects",
            "listener_reconnects",
            "listener_misconfigured",
            "listening",
            "resyncs",
            "events_sent",
            "bytes_sent",
            "bytes_raw",
            "heartbeats_sent",
            "stalled_disconnects",
        )
    }
    last = counters.last_notification_at
    snapshot["seconds_since_last_notification"] = None if last is None else time.monotonic() - last
    snapshot["subscriptions"] = subscriptions_by_topic()
    snapshot["notification_latency"] = counters.notification_latency.snapshot()
    snapshot["views"] = {
        name: {
            **{f.name: getattr(view, f.name) for f in fields(view) if f.name != "render_seconds"},
            "render_seconds": view.render_seconds.snapshot(),
        }
        for name, view in counters.views.copy().items()
    }
    snapshot["commands"] = {
        name: {"by_status": dict(command.by_status), "seconds": command.seconds.snapshot()}
        for name, command in counters.commands.copy().items()
    }
    return snapshot
