"""Through the real stack: nginx (TLS, HTTP/2 and HTTP/1.1) -> two uvicorn processes of the demo
-> PgBouncer in transaction mode -> PostgreSQL, the listeners direct (``LISTEN_DATABASE``)."""

from __future__ import annotations

import os
import statistics
import threading
import time

import pytest

from tests.deploy.client import Streams
from tests.deploy.conftest import Stack

pytestmark = pytest.mark.slow


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def test_pages_and_commands_through_pgbouncer_in_transaction_mode(stack: Stack) -> None:
    import http.client

    from tests.deploy.client import insecure_tls

    connection = http.client.HTTPSConnection(
        "127.0.0.1", stack.nginx.port, timeout=10, context=insecure_tls()
    )
    connection.request("GET", "/login/")
    response = connection.getresponse()
    assert response.status == 200, response.read()[:500]
    connection.close()
    for i in range(5):
        assert stack.add(f"through pgbouncer {i}") == 204
    assert {f"through pgbouncer {i}" for i in range(5)} <= stack.committed()
    log = (stack.pgbouncer.directory / "pgbouncer.log").read_text()
    assert "login attempt: db=postgres user=postgres" in log


def test_events_reach_clients_through_nginx_as_fast_as_direct(stack: Stack) -> None:
    count = int(os.environ.get("DEPLOY_STREAMS", "100"))  # per path: via nginx, and direct
    rounds = int(os.environ.get("DEPLOY_ROUNDS", "10"))
    direct = [app.url for app in stack.apps]
    with (
        Streams([stack.nginx.url], count) as proxied,
        Streams(direct, count // len(direct)) as straight,
    ):
        everyone = proxied.streams + straight.streams
        expected = stack.committed()
        for streams in (proxied, straight):
            try:
                streams.wait(
                    lambda s: s.names == expected, 30 + count / 10, "showing the first render"
                )
            except AssertionError:
                print(stack.logs())
                raise
        via_nginx: list[float] = []
        via_direct: list[float] = []
        for i in range(rounds):
            name = f"latency {i:03d}"
            sent = time.monotonic()
            assert stack.add(name, base=stack.apps[i % 2].url) == 204
            for streams in (proxied, straight):
                try:
                    streams.wait(lambda s, n=name: s.arrived(n) is not None, 10, f"showing {name}")
                except AssertionError:
                    print(stack.logs())
                    raise
            via_nginx += [s.arrived(name) - sent for s in proxied.streams]  # type: ignore[operator]
            via_direct += [s.arrived(name) - sent for s in straight.streams]  # type: ignore[operator]
        assert all(s.connects == 1 for s in everyone), "a stream reconnected"
    n50, n99 = percentile(via_nginx, 50), percentile(via_nginx, 99)
    d50, d99 = percentile(via_direct, 50), percentile(via_direct, 99)
    print(
        f"\nevent latency, {count} streams through nginx + {count} direct, {rounds} commands:"
        f" nginx p50 {n50 * 1000:.0f} ms p99 {n99 * 1000:.0f} ms max {max(via_nginx) * 1000:.0f}"
        f" ms; direct p50 {d50 * 1000:.0f} ms p99 {d99 * 1000:.0f} ms"
        f" max {max(via_direct) * 1000:.0f} ms; mean {statistics.mean(via_nginx) * 1000:.0f}"
        f" vs {statistics.mean(via_direct) * 1000:.0f} ms"
    )
    # nginx adds no buffering: whatever the server's own latency, the proxy adds < 100 ms.
    assert n99 - d99 < 0.1, (n99, d99)
    assert max(via_nginx) - max(via_direct) < 0.1, (max(via_nginx), max(via_direct))


def test_a_command_on_one_process_reaches_streams_on_the_other(stack: Stack) -> None:
    first, second = stack.apps
    with Streams([first.url], 3) as on_first, Streams([second.url], 3) as on_second:
        for streams in (on_first, on_second):
            streams.wait(lambda s: s.names is not None, 20, "showing the first render")
        assert stack.add("served by the second", base=second.url) == 204
        on_first.wait(lambda s: "served by the second" in (s.names or ()), 2, "updated")
        assert stack.add("served by the first", base=first.url) == 204
        on_second.wait(lambda s: "served by the first" in (s.names or ()), 2, "updated")


def test_rolling_restart_loses_no_update(stack: Stack) -> None:
    committed: list[str] = []
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            name = f"rolling {i:04d}"
            try:
                if stack.add(name, timeout=5) == 204:
                    committed.append(name)
                    i += 1
            except OSError:
                pass
            time.sleep(0.05)

    with Streams([stack.nginx.url], 20) as tabs:
        tabs.wait(lambda s: s.names == stack.committed(), 20, "showing the first render")
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        try:
            for app in stack.apps:  # one at a time: stop, start again, then the next
                app.stop()
                time.sleep(0.5)
                app.start()
                time.sleep(2.5)  # the documented fail_timeout: nginx sends to it again
        finally:
            stop.set()
            writer.join(10)
        assert stack.add("after the restarts") == 204
        expected = stack.committed()
        assert set(committed) <= expected
        took = tabs.wait(lambda s: s.names == expected, 5, "showing the final state")
        reconnects = sum(s.connects - 1 for s in tabs.streams)
    print(
        f"\nrolling restart: {len(committed)} commands during it, {reconnects} reconnections,"
        f" every tab final {took:.2f}s after the last command"
    )
    assert reconnects >= len(tabs.streams) // 2, "the restarts did not move the streams"


def test_a_listener_behind_the_transaction_pool_is_reported_loudly(stack: Stack) -> None:
    misconfigured = stack.app(listen_url=stack.pgbouncer.database_url, name="misconfigured")
    with misconfigured, Streams([misconfigured.url], 1) as streams:
        streams.wait(lambda s: s.names is not None, 20, "showing the first render")
        deadline = time.monotonic() + 15
        while "REALTIME['LISTEN_DATABASE']" not in misconfigured.log_tail(400):
            assert time.monotonic() < deadline, misconfigured.log_tail(100)
            time.sleep(0.2)
        log = misconfigured.log_tail(400)
    assert "PgBouncer" in log
    for app in stack.apps:
        assert "REALTIME['LISTEN_DATABASE']" not in app.log_tail(2000)
