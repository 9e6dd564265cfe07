"""Per-process counters, bumped where things happen and read by :func:`realtime.stats`, the
benchmarks and the Prometheus exporter (:mod:`realtime.prometheus`): one source of truth.

Plain integers bumped from the event loop (and, for publishes, from any thread: a lost increment
under a race is acceptable for a counter). Reading them costs nothing and changes nothing. Per-view
counters (:class:`ViewCounters`) are looked up once per stream, so the hot path (an event sent to
one of 10,000 streams) costs a few attribute increments; histograms are fixed buckets, one list
increment per observation. Command counters are bumped from request threads, under a lock
(commands are not the hot path, and an exact count is what a dashboard expects).

This module imports nothing of the app, so any module may bump a counter.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from dataclasses import dataclass, field

#: The view label of renders and sends made outside a stream view (tests, other callers).
NO_VIEW = "(none)"

#: Upper bounds (seconds) of the latency histograms: renders, commands, notification latency.
SECONDS_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

#: Seconds after which a notification no stream has rendered stops being awaited.
FORGET_AFTER = 60.0


class Histogram:
    """Counts of observations per bucket (not cumulative; the last one is ``+Inf``) and their sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = SECONDS_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count one observation (``value <= bound`` falls in that bound's bucket)."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def snapshot(self) -> dict[str, object]:
        """``{"buckets": [(bound, cumulative count), ...], "count", "sum"}`` (``inf`` last)."""
        cumulative, total = [], 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += n
            cumulative.append((bound, total))
        return {"buckets": cumulative, "count": total, "sum": self.sum}


@dataclass(slots=True)
class ViewCounters:
    """The counters of one stream view (by class name), bumped by its streams."""

    open_streams: int = 0
    renders: int = 0
    #: Streams that took a render made for another stream with the same render key.
    renders_shared: int = 0
    render_errors: int = 0
    #: Seconds from a render's start (waiting for a render thread included) to its bytes.
    render_seconds: Histogram = field(default_factory=Histogram)
    events_sent: int = 0
    #: Bytes handed to the server (compressed, when the stream is) and before compression.
    bytes_sent: int = 0
    bytes_raw: int = 0
    stalled_disconnects: int = 0


@dataclass(slots=True)
class CommandCounters:
    """The counters of one command (by its name): answers by status, and their durations."""

    by_status: dict[int, int] = field(default_factory=dict)
    seconds: Histogram = field(default_factory=Histogram)


@dataclass
class Counters:
    """Monotonic counters since the process started (``open_streams``, ``subscriptions`` and
    ``listening`` go up and down)."""

    open_streams: int = 0
    subscriptions: int = 0
    notifications_received: int = 0
    publishes: int = 0
    renders: int = 0
    renders_shared: int = 0
    render_errors: int = 0
    listener_connects: int = 0
    listener_reconnects: int = 0
    listener_misconfigured: int = 0
    #: Listener connections of this process that are LISTENing now (0 or 1 per event loop).
    listening: int = 0
    resyncs: int = 0
    events_sent: int = 0
    bytes_sent: int = 0
    bytes_raw: int = 0
    heartbeats_sent: int = 0
    stalled_disconnects: int = 0
    last_notification_at: float | None = None
    #: Seconds from a notification's arrival to the first stream having sent (or found unchanged)
    #: a render that includes it; notifications arriving meanwhile are covered by that sample.
    notification_latency: Histogram = field(default_factory=Histogram)
    #: (hub version, arrival) of the oldest notification no stream has rendered yet.
    awaiting: tuple[int, float] | None = None
    views: dict[str, ViewCounters] = field(default_factory=dict)
    commands: dict[str, CommandCounters] = field(default_factory=dict)

    def view(self, name: str) -> ViewCounters:
        """The counters of the stream view ``name`` (created on first use; look it up once)."""
        found = self.views.get(name)
        if found is None:
            found = self.views[name] = ViewCounters()
        return found

    def notified(self, version: int) -> None:
        """A notification that changes some stream's state arrived (hub ``version``)."""
        now = time.monotonic()
        # One whose streams all closed before rendering it is forgotten after a while, so it
        # does not inflate a later sample.
        if self.awaiting is None or now - self.awaiting[1] > FORGET_AFTER:
            self.awaiting = (version, now)

    def rendered(self, version: int) -> None:
        """A stream has sent (or found unchanged) a render for hub ``version`` or later."""
        awaiting = self.awaiting
        if awaiting is not None and version >= awaiting[0]:
            self.awaiting = None
            self.notification_latency.observe(time.monotonic() - awaiting[1])

    def command(self, name: str, status: int, seconds: float) -> None:
        """Count one answer of the command ``name`` (any thread)."""
        with _commands_lock:
            found = self.commands.get(name)
            if found is None:
                found = self.commands[name] = CommandCounters()
            found.by_status[status] = found.by_status.get(status, 0) + 1
            found.seconds.observe(seconds)


_commands_lock = threading.Lock()

counters = Counters()
