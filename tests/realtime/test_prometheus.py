"""``realtime.prometheus``: the exposition matches the counters, the view is never public, and
under two uvicorn worker processes (multiprocess mode) a scrape adds up every process's numbers."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.test import RequestFactory, override_settings
from prometheus_client.parser import text_string_to_metric_families

from realtime.counters import Counters, counters
from realtime.prometheus import RealtimeCollector, _Mirror, forget_dead_processes, metrics_view
from realtime.testing import EventStream, open_stream, post_command
from tests.helpers import REALTIME_SETTINGS, ROOT, ServerProcess, database_url

TOKEN = "a-test-token-of-some-length"
STREAM = "/test/groups/stream/"
ADD = "/test/groups/add/"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """``{(sample name, sorted labels): value}`` of a Prometheus text exposition."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (over every process)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def pids(samples: Samples, name: str) -> set[str]:
    return {dict(ls)["pid"] for (n, ls), v in samples.items() if n == name and v}


def test_importing_realtime_does_not_import_prometheus_client() -> None:
    code = (
        "import sys, realtime, realtime.counters, realtime.metrics; "
        "assert 'prometheus_client' not in sys.modules, 'imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_collector_reads_the_counters() -> None:
    source = Counters()
    desk = source.view("DeskStream")
    desk.open_streams, desk.renders, desk.bytes_sent, desk.bytes_raw = 3, 7, 100, 900
    desk.render_seconds.observe(0.02)
    source.notifications_received = 4
    source.listener_misconfigured = 2
    source.command("CreateTicket", 204, 0.01)
    source.command("CreateTicket", 422, 0.002)
    source.notified(1)
    source.rendered(1)
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(RealtimeCollector(source))
    samples = parse(generate_latest(registry).decode())
    assert total(samples, "realtime_streams_open", view="DeskStream") == 3
    assert total(samples, "realtime_renders_total", view="DeskStream") == 7
    assert total(samples, "realtime_sent_bytes_total") == 100
    assert total(samples, "realtime_sent_uncompressed_bytes_total") == 900
    assert total(samples, "realtime_notifications_received_total") == 4
    assert total(samples, "realtime_listener_misconfigured_total") == 2
    assert total(samples, "realtime_commands_total", command="CreateTicket", status="204") == 1
    assert total(samples, "realtime_commands_total", command="CreateTicket", status="422") == 1
    assert total(samples, "realtime_command_duration_seconds_count") == 2
    assert total(samples, "realtime_command_duration_seconds_bucket", le="0.005") == 1
    assert total(samples, "realtime_render_duration_seconds_bucket", le="0.025") == 1
    assert total(samples, "realtime_render_duration_seconds_bucket", le="0.01") == 0
    assert total(samples, "realtime_notification_latency_seconds_count") == 1


def test_a_notification_nobody_renders_is_not_measured() -> None:
    source = Counters()
    source.notified(5)
    source.notified(6)  # covered by the sample of version 5
    source.rendered(4)  # a render older than the notification
    assert source.notification_latency.count == 0
    source.rendered(6)
    source.rendered(7)
    assert source.notification_latency.count == 1


def test_a_notification_whose_streams_left_is_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    import realtime.counters

    now = [1000.0]
    monkeypatch.setattr(realtime.counters.time, "monotonic", lambda: now[0])
    source = Counters()
    source.notified(1)  # its streams close before rendering it
    now[0] += realtime.counters.FORGET_AFTER + 1
    source.notified(2)
    now[0] += 0.004
    source.rendered(2)
    assert source.notification_latency.sum == pytest.approx(0.004)


def test_mirror_copies_deltas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The copy into prometheus-client's metrics adds what changed since the last copy."""
    source = Counters()
    mirror = _Mirror()
    view = source.view("V")
    view.renders = 2
    view.render_seconds.observe(0.003)
    source.command("C", 204, 0.5)
    mirror.sync(source)
    view.renders = 5
    view.render_seconds.observe(3.0)
    source.command("C", 204, 0.5)
    mirror.sync(source)
    mirror.sync(source)
    assert mirror.views["renders"].labels("V")._value.get() == 5
    child = mirror.renders.labels("V")
    assert [b.get() for b in child._buckets][2] == 1  # 0.005
    assert [b.get() for b in child._buckets][11] == 1  # 5.0
    assert child._sum.get() == pytest.approx(3.003)
    assert mirror.commands.labels("C", "204")._value.get() == 2


def test_dead_processes_live_gauges_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (tmp_path / f"gauge_liveall_{dead}.db").write_bytes(b"")
    (tmp_path / f"counter_{dead}.db").write_bytes(b"")
    import os

    (tmp_path / f"gauge_liveall_{os.getpid()}.db").write_bytes(b"")
    forget_dead_processes(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"counter_{dead}.db", f"gauge_liveall_{os.getpid()}.db"]
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("user", "headers", "status"),
    [
        (AnonymousUser(), {}, 401),
        (AnonymousUser(), {"Authorization": "Bearer wrong-token-of-some-length"}, 401),
        (AnonymousUser(), {"Authorization": f"Bearer {TOKEN}"}, 200),
        (User(username="c", is_active=True), {}, 403),
        (User(username="s", is_active=True, is_staff=True), {}, 200),
        (User(username="x", is_active=False, is_staff=True), {}, 403),
    ],
)
def test_the_view_is_for_staff_or_the_token(
    user: object, headers: dict[str, str], status: int
) -> None:
    request = RequestFactory().get("/metrics", headers=headers)
    request.user = user  # type: ignore[assignment]
    with override_settings(REALTIME={"METRICS_TOKEN": TOKEN}):
        response = metrics_view(request)
    assert response.status_code == status
    if status == 200:
        samples = parse(response.content.decode())
        assert ("realtime_pg_notification_queue_usage", ()) in samples
        assert total(samples, "realtime_publishes_total") == counters.publishes


@pytest.mark.django_db
def test_no_token_means_staff_only() -> None:
    request = RequestFactory().get("/metrics", headers={"Authorization": "Bearer "})
    request.user = AnonymousUser()
    assert metrics_view(request).status_code == 401


# Two worker processes ------------------------------------------------------------------------


@pytest.fixture
def two_workers(transactional_db: None, tmp_path: Path) -> Iterator[ServerProcess]:
    """uvicorn with two worker processes in prometheus-client's multiprocess mode."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    server = ServerProcess(
        database_url(),
        settings_module=REALTIME_SETTINGS,
        app="tests.realtime.asgi:application",
        realtime={"METRICS_TOKEN": TOKEN},
        env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
        log_dir=tmp_path,
        workers=2,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def scrape(server: ServerProcess) -> Samples:
    request = urllib.request.Request(
        server.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return parse(response.read().decode())


def until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.1)


@pytest.mark.slow
def test_two_worker_processes_add_up(two_workers: ServerProcess) -> None:
    url = two_workers.url
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url + "/metrics", timeout=5)
    assert refused.value.code == 401
    refused.value.close()

    # Streams until both processes hold some (the kernel picks the process of each connection).
    streams: list[EventStream] = []
    try:
        for _ in range(40):
            stream = open_stream(url + STREAM, timeout=10)
            stream.next_event(timeout=10)
            streams.append(stream)
            if len(streams) >= 4 and len(pids(scrape(two_workers), "realtime_streams_open")) == 2:
                break
        # The process not answering copies its counters every SYNC_INTERVAL (1 s).
        until(
            lambda: (
                total(scrape(two_workers), "realtime_streams_open", view="GroupsStream")
                == len(streams)
            ),
            "every open stream in the gauge",
        )
        samples = scrape(two_workers)
        assert len(pids(samples, "realtime_streams_open")) == 2, "one process took every stream"
        assert len(pids(samples, "realtime_listener_up")) == 2

        before = samples
        # The known sequence: 5 commands that commit and publish, 2 invalid, 1 refused by a rule.
        for i in range(5):
            assert post_command(url + ADD, {"name": f"metrics-{i}"}).status == 204
        for _ in range(2):
            assert post_command(url + ADD, {"name": "x"}).status == 422
        assert post_command(url + ADD, {"name": "forbidden"}).status == 409
        for stream in streams:
            stream.next_event(lambda e: "metrics-4" in e.data, timeout=10)

        def counted() -> bool:
            now = scrape(two_workers)
            return (
                total(now, "realtime_notifications_received_total")
                - total(before, "realtime_notifications_received_total")
                == 5 * 2
                and total(now, "realtime_command_duration_seconds_count") == 8
            )

        until(counted, "every process's counters in the scrape")
        after = scrape(two_workers)

        def grew(name: str, **labels: str) -> float:
            return total(after, name, **labels) - total(before, name, **labels)

        commands = {"command": "AddGroup"}
        assert grew("realtime_commands_total", **commands, status="204") == 5
        assert grew("realtime_commands_total", **commands, status="422") == 2
        assert grew("realtime_commands_total", **commands, status="409") == 1
        assert grew("realtime_publishes_total") == 5
        # Each process's listener heard each of the 5 notifications.
        assert grew("realtime_notifications_received_total") == 10
        renders = grew("realtime_renders_total", view="GroupsStream")
        assert 2 <= renders <= 10  # shared per process; coalesced when notifications overlap
        assert grew("realtime_events_sent_total", view="GroupsStream") >= len(streams)
        assert grew("realtime_sent_bytes_total", view="GroupsStream") > 0
        assert grew("realtime_notification_latency_seconds_count") >= 2  # one per process at least
        assert total(after, "realtime_streams_open", view="GroupsStream") == len(streams)
        # Whichever process answers, the totals agree.
        for _ in range(4):
            again = scrape(two_workers)
            assert total(again, "realtime_commands_total") == total(
                after, "realtime_commands_total"
            )
    finally:
        for stream in streams:
            stream.close()
    until(
        lambda: total(scrape(two_workers), "realtime_streams_open") == 0,
        "the closed streams leave the gauge",
    )


def test_one_process_mode_starts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core.signals import request_started

    from realtime import prometheus

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    prometheus.connect()
    assert not any("start_sync" in str(receiver) for receiver in request_started.receivers)
    assert prometheus.multiprocess_dir() is None
