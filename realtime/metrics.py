"""``stats()``: a snapshot of this process's counters and subscriptions, for operators and benchmarks."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from realtime.counters import counters
from realtime.relay.registry import subscriptions_by_topic


def stats() -> dict[str, Any]:
    """A snapshot of this process's counters, plus subscriptions per topic.

    Keys: ``open_streams``, ``subscriptions`` (topic -> count), ``notifications_received``,
    ``publishes``, ``renders``, ``renders_shared``, ``render_errors``, ``listener_connects``,
    ``listener_reconnects``, ``listener_misconfigured`` (the listener's test notification never
    came back: see :mod:`realtime.relay.postgres`), ``resyncs``, ``events_sent``, ``bytes_sent``, ``heartbeats_sent``,
    ``stalled_disconnects`` and ``seconds_since_last_notification`` (``None`` before the first).
    """
    snapshot = asdict(counters)
    last = snapshot.pop("last_notification_at")
    snapshot["seconds_since_last_notification"] = None if last is None else time.monotonic() - last
    snapshot["subscriptions"] = subscriptions_by_topic()
    return snapshot
