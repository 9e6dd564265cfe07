"""Prometheus metrics: the optional extra ``django-realtime-cqrs[metrics]`` (prometheus-client).

What it guarantees: :func:`metrics_view` answers the Prometheus text format with the counters of
:mod:`realtime.counters` (the very numbers :func:`realtime.stats` and the benchmarks read), for
staff users or a request bearing ``REALTIME['METRICS_TOKEN']``; anyone else gets 401/403. No URL
is mounted for you: a project routes the view where it wants it. Labels are bounded by the code
(a stream view's class name, a command's name, an HTTP status), never by users, tabs or topics.

Two modes, chosen the way prometheus-client chooses them:

- **One process** (``PROMETHEUS_MULTIPROC_DIR`` unset): a collector reads the counters at scrape
  time. Nothing is added to the path of an event; :class:`RealtimeCollector` can also be
  registered in another registry (``REGISTRY.register(RealtimeCollector())``).
- **Several processes** (``PROMETHEUS_MULTIPROC_DIR`` set, prometheus-client's multiprocess mode):
  each process copies its counters into prometheus-client's per-process files every
  :data:`SYNC_INTERVAL` seconds (a daemon thread, started by the process's first request) and
  before it answers a scrape; the view sums every process's files (``MultiProcessCollector``).
  Gauges of a process (open streams, subscriptions, listener) carry its ``pid`` and vanish when
  it exits. Counters only grow, so a scrape sees each process as of its last copy.

``realtime_pg_notification_queue_usage`` is read from PostgreSQL by the process that answers.
This module is imported only by a project that uses it (``import realtime`` never imports
prometheus-client) and does nothing when imported.
"""

from __future__ import annotations

import atexit
import glob
import hmac
import logging
import os
import re
import threading
from collections.abc import Iterator
from typing import Any

from django.db import DatabaseError, connections
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Metric,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

from realtime.conf import get_config
from realtime.counters import SECONDS_BUCKETS, Counters, counters
from realtime.counters import Histogram as CountsHistogram

logger = logging.getLogger("realtime")

#: Seconds between two copies of a process's counters to the multiprocess files.
SYNC_INTERVAL = 1.0

#: Process-wide counters: (attribute of Counters, metric name without ``_total``, help).
PROCESS_COUNTERS = (
    ("notifications_received", "realtime_notifications_received", "Notifications received."),
    ("publishes", "realtime_publishes", "publish() calls."),
    ("heartbeats_sent", "realtime_heartbeats_sent", "Keep-alive comments sent to streams."),
    ("listener_connects", "realtime_listener_connects", "Listener connections made."),
    (
        "listener_reconnects",
        "realtime_listener_reconnects",
        "Listener connections made again after one was lost.",
    ),
    (
        "listener_misconfigured",
        "realtime_listener_misconfigured",
        "Listener connections whose test notification never came back (PgBouncer in "
        "transaction pooling?).",
    ),
    ("resyncs", "realtime_resyncs", "Times every stream re-rendered after a listener gap."),
)
#: Per-view counters: (attribute of ViewCounters, metric name without ``_total``, help).
VIEW_COUNTERS = (
    ("renders", "realtime_renders", "Renders run, by stream view."),
    (
        "renders_shared",
        "realtime_renders_shared",
        "Streams that took a render made for another stream, by view.",
    ),
    ("render_errors", "realtime_render_errors", "Renders that raised, by stream view."),
    ("events_sent", "realtime_events_sent", "Pieces sent to streams, by stream view."),
    ("bytes_sent", "realtime_sent_bytes", "Bytes sent to streams (on the wire), by view."),
    (
        "bytes_raw",
        "realtime_sent_uncompressed_bytes",
        "Bytes sent to streams before compression, by view.",
    ),
    (
        "stalled_disconnects",
        "realtime_stalled_streams_closed",
        "Streams closed because their client stopped reading, by view.",
    ),
)
#: Gauges of one process: (attribute of Counters, metric name, help).
PROCESS_GAUGES = (
    ("subscriptions", "realtime_subscriptions", "Hub subscriptions open in the process."),
    ("listening", "realtime_listener_up", "Listener connections LISTENing now in the process."),
)
STREAMS_OPEN = ("realtime_streams_open", "Streams open, by stream view and process.")
RENDER_SECONDS = ("realtime_render_duration_seconds", "Seconds per render, by stream view.")
LATENCY = (
    "realtime_notification_latency_seconds",
    "Seconds from a notification's arrival to the first stream having sent its render.",
)
COMMANDS = ("realtime_commands", "Commands answered, by command and HTTP status.")
COMMAND_SECONDS = ("realtime_command_duration_seconds", "Seconds per command, by command.")
QUEUE_USAGE = (
    "realtime_pg_notification_queue_usage",
    "Fraction of PostgreSQL's NOTIFY queue in use (pg_notification_queue_usage()).",
)


def multiprocess_dir() -> str | None:
    """prometheus-client's multiprocess directory, or ``None`` in one-process mode."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class RealtimeCollector(Collector):
    """This process's counters as metric families, read at collection time (one-process mode)."""

    def __init__(self, source: Counters = counters) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        source, pid = self.source, str(os.getpid())
        views = source.views.copy()
        for attribute, name, documentation in PROCESS_COUNTERS:
            yield CounterMetricFamily(name, documentation, value=getattr(source, attribute))
        for attribute, name, documentation in VIEW_COUNTERS:
            family = CounterMetricFamily(name, documentation, labels=["view"])
            for view, numbers in views.items():
                family.add_metric([view], getattr(numbers, attribute))
            yield family
        for attribute, name, documentation in PROCESS_GAUGES:
            gauge = GaugeMetricFamily(name, documentation, labels=["pid"])
            gauge.add_metric([pid], getattr(source, attribute))
            yield gauge
        streams = GaugeMetricFamily(*STREAMS_OPEN, labels=["view", "pid"])
        for view, numbers in views.items():
            streams.add_metric([view, pid], numbers.open_streams)
        yield streams
        renders = HistogramMetricFamily(*RENDER_SECONDS, labels=["view"])
        for view, numbers in views.items():
            _add_histogram(renders, [view], numbers.render_seconds)
        yield renders
        latency = HistogramMetricFamily(*LATENCY)
        _add_histogram(latency, [], source.notification_latency)
        yield latency
        commands = source.commands.copy()
        answered = CounterMetricFamily(*COMMANDS, labels=["command", "status"])
        durations = HistogramMetricFamily(*COMMAND_SECONDS, labels=["command"])
        for command, answers in commands.items():
            for status, n in answers.by_status.copy().items():
                answered.add_metric([command, str(status)], n)
            _add_histogram(durations, [command], answers.seconds)
        yield answered
        yield durations


def _add_histogram(family: HistogramMetricFamily, labels: list[str], h: CountsHistogram) -> None:
    counts, total = list(h.counts), h.sum
    buckets, running = [], 0
    for bound, n in zip((*h.bounds, float("inf")), counts, strict=True):
        running += n
        buckets.append((_bound(bound), running))
    family.add_metric(labels, buckets, total)


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class QueueUsageCollector(Collector):
    """``pg_notification_queue_usage()`` of the relay's database, read at collection time."""

    def collect(self) -> Iterator[Metric]:
        alias = get_config().DATABASE
        connection = connections[alias]
        if connection.vendor != "postgresql":
            return
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_notification_queue_usage()")
                (usage,) = cursor.fetchone() or (0.0,)
        except DatabaseError:
            logger.warning("realtime: could not read pg_notification_queue_usage()", exc_info=True)
            return
        yield GaugeMetricFamily(*QUEUE_USAGE, value=float(usage))


# Multiprocess mode ---------------------------------------------------------------------------


class _Mirror:
    """prometheus-client metrics that this process's counters are copied into (by deltas)."""

    def __init__(self) -> None:
        registry = CollectorRegistry(auto_describe=True)  # never exposed: the files are
        buckets = (*SECONDS_BUCKETS, float("inf"))
        self.process = {
            attribute: Counter(name, documentation, registry=registry)
            for attribute, name, documentation in PROCESS_COUNTERS
        }
        self.views = {
            attribute: Counter(name, documentation, ["view"], registry=registry)
            for attribute, name, documentation in VIEW_COUNTERS
        }
        self.gauges = {
            attribute: Gauge(name, documentation, registry=registry, multiprocess_mode="liveall")
            for attribute, name, documentation in PROCESS_GAUGES
        }
        self.streams = Gauge(
            *STREAMS_OPEN, ["view"], registry=registry, multiprocess_mode="liveall"
        )
        self.renders = Histogram(*RENDER_SECONDS, ["view"], registry=registry, buckets=buckets)
        self.latency = Histogram(*LATENCY, registry=registry, buckets=buckets)
        self.commands = Counter(*COMMANDS, ["command", "status"], registry=registry)
        self.command_seconds = Histogram(
            *COMMAND_SECONDS, ["command"], registry=registry, buckets=buckets
        )
        self.last: dict[Any, float] = {}
        self.lock = threading.Lock()
        self.pid = os.getpid()

    def _add(self, key: Any, value: float, metric: Any) -> None:
        delta = value - self.last.get(key, 0)
        if delta:
            metric.inc(delta)
            self.last[key] = value

    def _histogram(self, key: Any, h: CountsHistogram, child: Any) -> None:
        # prometheus-client's Histogram keeps one value per bucket (not cumulative) and a sum;
        # adding our buckets' deltas to them is an observe() of each observation since last time.
        for i, n in enumerate(list(h.counts)):
            delta = n - self.last.get((key, i), 0)
            if delta:
                child._buckets[i].inc(delta)
                self.last[(key, i)] = n
        self._add((key, "sum"), h.sum, child._sum)

    def sync(self, source: Counters = counters) -> None:
        """Copy what changed since the last call into this process's files."""
        with self.lock:
            for attribute, metric in self.process.items():
                self._add(attribute, getattr(source, attribute), metric)
            for attribute, gauge in self.gauges.items():
                gauge.set(getattr(source, attribute))
            for view, numbers in source.views.copy().items():
                for attribute, metric in self.views.items():
                    self._add((attribute, view), getattr(numbers, attribute), metric.labels(view))
                self.streams.labels(view).set(numbers.open_streams)
                self._histogram(("render", view), numbers.render_seconds, self.renders.labels(view))
            self._histogram("latency", source.notification_latency, self.latency)
            for command, answers in source.commands.copy().items():
                for status, n in answers.by_status.copy().items():
                    key = ("command", command, status)
                    self._add(key, n, self.commands.labels(command, str(status)))
                self._histogram(
                    ("command", command), answers.seconds, self.command_seconds.labels(command)
                )


_mirror: _Mirror | None = None
_mirror_lock = threading.Lock()


def _the_mirror() -> _Mirror:
    """This process's mirror, created with its sync thread on first use."""
    global _mirror
    mirror = _mirror
    if mirror is not None and mirror.pid == os.getpid():
        return mirror
    with _mirror_lock:
        if _mirror is None or _mirror.pid != os.getpid():
            path = multiprocess_dir()
            if path is None:
                raise RuntimeError("PROMETHEUS_MULTIPROC_DIR is not set")
            forget_dead_processes(path)
            _mirror = _Mirror()
            atexit.register(multiprocess.mark_process_dead, os.getpid(), path)
            threading.Thread(
                target=_sync_forever, args=(_mirror,), name="realtime-metrics", daemon=True
            ).start()
        return _mirror


def _sync_forever(mirror: _Mirror) -> None:
    stop = threading.Event()
    while not stop.wait(SYNC_INTERVAL):
        try:
            mirror.sync()
        except Exception:  # a lost copy is repaired by the next one; the thread must go on
            logger.exception("realtime: could not copy counters to the metrics files")


def start_sync(**kwargs: Any) -> None:
    """``request_started`` receiver (multiprocess mode): start copying this process's counters."""
    _the_mirror()


def connect() -> None:
    """Start the copying on each process's first request, in multiprocess mode (from ``ready``)."""
    if multiprocess_dir() is None:
        return
    from django.core.signals import request_started

    request_started.connect(start_sync, dispatch_uid="realtime.prometheus.start_sync")


_LIVE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")


def forget_dead_processes(path: str) -> None:
    """Remove the live gauges of processes that no longer run (one killed without its exit
    hook), as prometheus-client's ``mark_process_dead`` would have."""
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        match = _LIVE_FILE.search(name)
        if match is None:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
        except PermissionError:  # someone else's process: alive
            continue


# The view --------------------------------------------------------------------------------------


def registry() -> CollectorRegistry:
    """A registry holding every realtime metric: this process's, or (multiprocess mode) the sum
    of every process's, plus the NOTIFY queue's usage."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir() is not None:
        _the_mirror().sync()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(RealtimeCollector())
    registry.register(QueueUsageCollector())
    return registry


def collect() -> list[Metric]:
    """The metric families :func:`metrics_view` exposes (e.g. for a page of your own)."""
    return list(registry().collect())


def allowed(request: HttpRequest) -> bool:
    """Whether ``request`` may read the metrics: an active staff user, or the bearer token."""
    token = get_config().METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[len("Bearer ") :].encode(), token.encode())
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """The Prometheus exposition of realtime's metrics (mount it, e.g. at ``metrics``).

    Readable by active staff users and by requests with ``Authorization: Bearer <token>`` when
    ``REALTIME['METRICS_TOKEN']`` is set; others get 401 (anonymous) or 403.
    """
    if not allowed(request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return HttpResponse("Staff only.", status=403, content_type="text/plain")
        return HttpResponse(
            "Send Authorization: Bearer <REALTIME['METRICS_TOKEN']>.",
            status=401,
            content_type="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    response = HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
