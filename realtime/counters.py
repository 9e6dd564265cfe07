"""Per-process counters, bumped where things happen and read by :func:`realtime.stats`.

Plain integers bumped from the event loop (and, for publishes, from any thread: a lost increment
under a race is acceptable for a counter). Reading them costs nothing and changes nothing. This
module imports nothing of the app, so any module may bump a counter.
"""

from __future__ import annotations

from dataclasses import dataclass


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
    listener_misconfigured: int = 0
    resyncs: int = 0
    events_sent: int = 0
    bytes_sent: int = 0
    heartbeats_sent: int = 0
    stalled_disconnects: int = 0
    last_notification_at: float | None = None


counters = Counters()
