"""The live operations page: realtime's own metrics, streamed by realtime (a dashboard example).

The page reads the metric families :mod:`realtime.prometheus` exports (so with several worker
processes and ``PROMETHEUS_MULTIPROC_DIR`` it shows every process; without, the one serving it),
keeps a short history in this process (sampled at most once a second while someone watches), and
renders rates, latency quantiles and a chart of the last minutes as inline SVG from a template.
Its stream re-renders every second (``refresh_interval``), so it morphs like any other state.
Staff only; linked from the admin index.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from django.views.generic import TemplateView

from realtime import StreamView
from realtime.prometheus import collect
from tickets.commands import StaffRequiredMixin
from tickets.views import StaffPageMixin

#: Seconds of history the chart shows, and between two samples.
WINDOW = 300.0
SAMPLE_EVERY = 1.0
#: Seconds over which rates and latency quantiles are computed.
RECENT = 60.0
CHART_WIDTH, CHART_HEIGHT = 600, 140


@dataclass
class Snapshot:
    """The numbers of one moment, added up over every process the metrics cover."""

    at: float
    streams_by_view: dict[str, float] = field(default_factory=dict)
    streams_by_pid: dict[str, float] = field(default_factory=dict)
    listeners: dict[str, float] = field(default_factory=dict)
    totals: dict[str, float] = field(default_factory=dict)
    commands: dict[tuple[str, str], float] = field(default_factory=dict)
    latency: dict[float, float] = field(default_factory=dict)  # upper bound -> cumulative count
    queue_usage: float | None = None


TOTALS = {
    "realtime_notifications_received_total": "notifications",
    "realtime_renders_total": "renders",
    "realtime_renders_shared_total": "renders_shared",
    "realtime_commands_total": "commands",
    "realtime_publishes_total": "publishes",
    "realtime_sent_bytes_total": "bytes_sent",
    "realtime_sent_uncompressed_bytes_total": "bytes_raw",
    "realtime_listener_reconnects_total": "reconnects",
}


def read_snapshot() -> Snapshot:
    """Now's numbers, from the metrics."""
    snapshot = Snapshot(at=time.monotonic())
    by_view: dict[str, float] = defaultdict(float)
    by_pid: dict[str, float] = defaultdict(float)
    totals: dict[str, float] = defaultdict(float)
    for family in collect():
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, sample.value
            if name == "realtime_streams_open":
                by_view[labels["view"]] += value
                by_pid[labels.get("pid", "?")] += value
            elif name == "realtime_listener_up":
                snapshot.listeners[labels.get("pid", "?")] = value
                by_pid.setdefault(labels.get("pid", "?"), 0.0)
            elif name in TOTALS:
                totals[TOTALS[name]] += value
                if name == "realtime_commands_total":
                    key = (labels["command"], labels["status"])
                    snapshot.commands[key] = snapshot.commands.get(key, 0.0) + value
            elif name == "realtime_notification_latency_seconds_bucket":
                bound = float(labels["le"])
                snapshot.latency[bound] = snapshot.latency.get(bound, 0.0) + value
            elif name == "realtime_pg_notification_queue_usage":
                snapshot.queue_usage = value
    snapshot.streams_by_view = dict(sorted(by_view.items()))
    snapshot.streams_by_pid = dict(sorted(by_pid.items()))
    snapshot.totals = dict(totals)
    return snapshot


class History:
    """The snapshots of the last :data:`WINDOW` seconds in this process (shared by viewers)."""

    def __init__(self) -> None:
        self.samples: deque[Snapshot] = deque(maxlen=int(WINDOW / SAMPLE_EVERY) + 2)
        self.lock = threading.Lock()

    def now(self) -> tuple[Snapshot, list[Snapshot]]:
        """A fresh snapshot (sampled into the history when the last is old enough), and the
        history."""
        current = read_snapshot()
        with self.lock:
            if not self.samples or current.at - self.samples[-1].at >= SAMPLE_EVERY * 0.9:
                self.samples.append(current)
            while self.samples and current.at - self.samples[0].at > WINDOW:
                self.samples.popleft()
            return current, list(self.samples)


history = History()


def rate(older: Snapshot, newer: Snapshot, key: str) -> float:
    """Per second, between two snapshots (0 when a counter went back: a reset)."""
    seconds = newer.at - older.at
    if seconds <= 0:
        return 0.0
    return max(0.0, (newer.totals.get(key, 0.0) - older.totals.get(key, 0.0)) / seconds)


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """``histogram_quantile`` over cumulative ``buckets`` (linear within a bucket), or None."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    previous_bound, previous_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return previous_bound
            inside = count - previous_count
            fraction = (rank - previous_count) / inside if inside else 1.0
            return previous_bound + (bound - previous_bound) * fraction
        previous_bound, previous_count = bound, count
    return previous_bound


def since(older: Snapshot, newer: Snapshot) -> dict[float, float]:
    """The latency buckets that filled between two snapshots."""
    return {b: newer.latency[b] - older.latency.get(b, 0.0) for b in newer.latency}


SERIES = (
    ("notifications", "Notifications/s", "series-notifications"),
    ("renders", "Renders/s", "series-renders"),
    ("commands", "Commands/s", "series-commands"),
)


def chart(samples: list[Snapshot], now: float) -> dict[str, Any]:
    """Polylines of the per-second rates over the last :data:`WINDOW` seconds, in SVG units."""
    rates: dict[str, list[tuple[float, float]]] = {key: [] for key, _, _ in SERIES}
    for older, newer in pairwise(samples):
        for key in rates:
            rates[key].append((newer.at, rate(older, newer, key)))
    peak = max((r for points in rates.values() for _, r in points), default=0.0)
    top = _nice(peak)
    lines = []
    for key, label, css in SERIES:
        points = [
            (
                round((at - (now - WINDOW)) / WINDOW * CHART_WIDTH, 1),
                round(CHART_HEIGHT - value / top * CHART_HEIGHT, 1),
            )
            for at, value in rates[key]
        ]
        lines.append({"key": key, "label": label, "css": css, "points": points})
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "top": top,
        "lines": lines,
        "minutes": int(WINDOW // 60),
    }


def _nice(value: float) -> float:
    """The smallest of 1, 2 and 5 times a power of ten at or above ``value`` (at least 1)."""
    decade = 1.0
    while True:
        for step in (1.0, 2.0, 5.0):
            if decade * step >= value:
                return decade * step
        decade *= 10.0


def operations_context() -> dict[str, Any]:
    """What ``operations/_live.html`` shows."""
    current, samples = history.now()
    recent = next((s for s in samples if current.at - s.at <= RECENT), current)
    window = since(recent, current)
    rates = {key: rate(recent, current, key) for key, _, _ in SERIES}
    return {
        "now": current,
        "streams_open": sum(current.streams_by_view.values()),
        "streams_by_view": current.streams_by_view,
        "processes": [
            {
                "pid": pid,
                "streams": streams,
                "listening": current.listeners.get(pid, 0.0) > 0,
            }
            for pid, streams in current.streams_by_pid.items()
        ],
        "rates": rates,
        "recent_seconds": round(current.at - recent.at),
        "latency_p50": _ms(quantile(0.5, window)),
        "latency_p95": _ms(quantile(0.95, window)),
        "latency_p50_all": _ms(quantile(0.5, current.latency)),
        "commands": sorted(current.commands.items()),
        "totals": current.totals,
        "queue_usage": current.queue_usage,
        "chart": chart(samples, current.at),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


class OperationsPage(StaffPageMixin, TemplateView):
    """``/ops/``: realtime's metrics, live (staff only)."""

    template_name = "operations/page.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """First paint: the same context the stream renders."""
        return {**super().get_context_data(**kwargs), **operations_context()}


class OperationsStream(StaffRequiredMixin, StreamView):
    """The page's stream: re-rendered every second (time, not a topic, moves these numbers)."""

    template_name = "operations/_live.html"
    refresh_interval = SAMPLE_EVERY

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """The live partial's context (the metrics of every process, and this one's history)."""
        return {**super().get_context_data(**kwargs), **operations_context()}
