"""Per-process counters for operators and benchmarks, read with :func:`realtime.stats`.

Plain integers bumped from the event loop (and, for publishes, from any thread: a lost increment
under a race is acceptable for a counter). Reading them costs nothing and changes nothing.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Counters:
    """Monotonic counters since the process started (``open_streams`` goes up and down)."""

    open_streams: int = 0
    notifications_received: int = 0
    publishes: int = 0
    renders: int = 0
    renders_shared: int = 0
    render_errors: int = 0
    listener_connects: int = 0
    listener_reconnects: int = 0
    resyncs: int = 0
    events_sent: int = 0
    bytes_sent: int = 0
    heartbeats_sent: int = 0
    stalled_disconnects: int = 0
    last_notification_at: float | None = None


counters = Counters()


def stats() -> dict[str, Any]:
    """A snapshot of this process's counters, plus subscriptions per topic.

    Keys: ``open_streams``, ``subscriptions`` (topic -> count), ``notifications_received``,
    ``publishes``, ``renders``, ``renders_shared``, ``render_errors``, ``listener_connects``,
    ``listener_reconnects``, ``resyncs``, ``events_sent``, ``bytes_sent``, ``heartbeats_sent``,
    ``stalled_disconnects`` and ``seconds_since_last_notification`` (``None`` before the first).
    """
    from realtime.relay.hub import subscriptions_by_topic

    snapshot = asdict(counters)
    last = snapshot.pop("last_notification_at")
    snapshot["seconds_since_last_notification"] = None if last is None else time.monotonic() - last
    snapshot["subscriptions"] = subscriptions_by_topic()
    return snapshot
