"""Faults, for real: uvicorn subprocesses, real HTTP and SSE, PostgreSQL connections killed and
PostgreSQL restarted while streams are open, two server processes, and a client that stops reading.

The page under test is the test project's live list of ``auth.Group`` names
(``/test/groups/stream/``, updated by the ``/test/groups/add/`` command, which publishes
``groups``). "Converged" means every stream's latest render lists exactly the names committed in
the database.
"""

from __future__ import annotations

import html
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from realtime.testing import EventStream, open_stream, post_command
from tests.faults.postgres import PrivatePostgres
from tests.helpers import (
    ServerProcess,
    database_url,
    listener_pids,
    wait_for,
)

STREAM = "/test/groups/stream/"
ADD = "/test/groups/add/"
NAMES = re.compile(r"<li>(.*?)</li>")


class Watched:
    """An open groups stream and the names of its latest render."""

    def __init__(self, url: str) -> None:
        self.stream: EventStream = open_stream(url + STREAM, timeout=10)
        assert self.stream.status == 200, self.stream.status
        self.names: set[str] | None = None
        self.renders = 0

    def pump(self) -> None:
        for event in self.stream.drain():
            if event.event == "datastar-patch-elements" and 'id="groups"' in event.elements:
                self.names = {html.unescape(n) for n in NAMES.findall(event.elements)}
                self.renders += 1

    def close(self) -> None:
        self.stream.close()


def committed_names(dsn: str | None = None) -> set[str]:
    """The group names committed in the database (the test database unless ``dsn`` is given)."""
    if dsn is None:
        from django.contrib.auth.models import Group

        return set(Group.objects.values_list("name", flat=True))
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM auth_group")}


def wait_converged(
    streams: list[Watched], expected: Callable[[], set[str]], timeout: float
) -> float:
    """Wait until every stream shows ``expected()``; return the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        want = expected()
        for stream in streams:
            stream.pump()
        if all(stream.names == want for stream in streams):
            return time.monotonic() - started
        if time.monotonic() > deadline:
            shown = [sorted(s.names or ()) for s in streams]
            raise AssertionError(
                f"streams did not converge on {sorted(want)} within {timeout}s: {shown}"
            )
        time.sleep(0.02)


def libpq_dsn(settings: dict[str, object], name: str | None = None) -> str:
    return psycopg.conninfo.make_conninfo(
        dbname=str(name or settings["NAME"]),
        user=str(settings.get("USER") or "postgres"),
        host=str(settings.get("HOST") or ""),
        port=str(settings.get("PORT") or 5432),
    )


@pytest.fixture
def streams() -> Iterator[list[Watched]]:
    opened: list[Watched] = []
    yield opened
    for stream in opened:
        stream.close()


@pytest.fixture
def server(transactional_db: None, tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(database_url(), log_dir=tmp_path) as process:
        yield process


def add(url: str, name: str) -> None:
    response = post_command(url + ADD, {"name": name})
    assert response.status == 204, (response.status, response.body)


def test_listener_backend_killed_streams_resync(
    server: ServerProcess, streams: list[Watched]
) -> None:
    from django.contrib.auth.models import Group
    from django.db import connection

    dsn = libpq_dsn(connection.settings_dict)
    database = connection.settings_dict["NAME"]
    # Other listeners on the test database (this pytest process's live server, say) are not the
    # server's: its own starts with its first stream, below, so it is the one not here yet.
    others = set(listener_pids(dsn, database))

    def server_listeners() -> list[int]:
        return [pid for pid in listener_pids(dsn, database) if pid not in others]

    streams.extend(Watched(server.url) for _ in range(5))
    wait_converged(streams, committed_names, timeout=5)
    add(server.url, "before")
    wait_converged(streams, committed_names, timeout=5)

    [old] = wait_for(server_listeners, 5, what="the server's listener")
    # Committed but never published: only the resync after the listener reconnects can show it.
    Group.objects.create(name="written while nobody listened")
    with psycopg.connect(dsn, autocommit=True) as conn:
        [[killed]] = conn.execute("SELECT pg_terminate_backend(%s)", [old]).fetchall()
    assert killed
    add(server.url, "during the gap")

    took = wait_converged(streams, committed_names, timeout=5)
    assert "written while nobody listened" in (streams[0].names or set())
    wait_for(lambda: server_listeners() not in ([], [old]), 5, what="a new listener")
    add(server.url, "after")
    took_after = wait_converged(streams, committed_names, timeout=5)
    print(f"converged {took:.2f}s after the kill, {took_after:.2f}s for the next command")


def test_postgres_restarted_streams_converge(
    private_postgres: PrivatePostgres, tmp_path: Path, streams: list[Watched]
) -> None:
    dsn = libpq_dsn(private_postgres.settings())
    expected = lambda: committed_names(dsn)  # noqa: E731
    with ServerProcess(private_postgres.url(), log_dir=tmp_path) as server:
        streams.extend(Watched(server.url) for _ in range(5))
        wait_converged(streams, expected, timeout=5)
        add(server.url, "before the restart")
        wait_converged(streams, expected, timeout=5)
        wait_for(lambda: listener_pids(dsn, "postgres"), 5, what="the server's listener")

        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO auth_group (name) VALUES ('written, never published')")
        started = time.monotonic()
        private_postgres.restart()
        restarted_in = time.monotonic() - started
        # At once, while the server's listener is still reconnecting: its notification is lost.
        add(server.url, "right after the restart")
        took = wait_converged(streams, expected, timeout=5)
        assert {"written, never published", "right after the restart"} <= (
            streams[0].names or set()
        )
        add(server.url, "later")
        wait_converged(streams, expected, timeout=5)
        assert all(not s.stream.ended for s in streams), "a stream ended; it should have survived"
        print(f"PostgreSQL restarted in {restarted_in:.2f}s; streams converged {took:.2f}s later")


@pytest.mark.slow
def test_command_on_one_process_reaches_streams_of_another(
    transactional_db: None, tmp_path: Path, streams: list[Watched]
) -> None:
    url = database_url()
    with (
        ServerProcess(url, log_dir=tmp_path) as first,
        ServerProcess(url, log_dir=tmp_path) as second,
    ):
        on_first = [Watched(first.url) for _ in range(3)]
        on_second = [Watched(second.url) for _ in range(3)]
        streams.extend(on_first + on_second)
        wait_converged(streams, committed_names, timeout=5)
        add(second.url, "served by the second")
        wait_converged(on_first, committed_names, timeout=2)
        add(first.url, "served by the first")
        wait_converged(streams, committed_names, timeout=2)
        assert streams[0].names == {"served by the first", "served by the second"}


@pytest.mark.slow
def test_stalled_client_memory_bounded_others_not_delayed(
    transactional_db: None, tmp_path: Path, streams: list[Watched]
) -> None:
    from django.contrib.auth.models import Group

    # A big page: every render is ~0.5 MB, so a server that queued renders for a client that
    # does not read would grow by tens of megabytes during the burst below.
    Group.objects.bulk_create(Group(name=f"group {i:05d} " + "x" * 80) for i in range(5000))
    stall = 10.0  # longer than the burst: the stream stays stuck throughout it
    with ServerProcess(
        database_url(), log_dir=tmp_path, realtime={"STALL_TIMEOUT": stall}, measured=False
    ) as server:
        reader = Watched(server.url)
        streams.append(reader)
        wait_converged(streams, committed_names, timeout=10)

        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", server.port))
        stalled.sendall(
            f"GET {STREAM} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        try:
            time.sleep(1.0)  # its first render fills the socket buffers; it never reads
            add(server.url, "warm-up")
            wait_converged(streams, committed_names, timeout=5)
            rss_before = server.rss()

            delays = []
            renders_before = reader.renders
            burst_started = time.monotonic()
            for i in range(60):
                started = time.monotonic()
                add(server.url, f"burst {i:03d}")
                wait_converged(streams, committed_names, timeout=2)
                delays.append(time.monotonic() - started)
            burst = time.monotonic() - burst_started
            rss_after = server.rss()
            renders = reader.renders - renders_before
            size = len("".join(f"<li>{n}</li>" for n in committed_names()))

            growth = rss_after - rss_before
            print(
                f"render {size / 1e6:.2f} MB x {renders} renders in {burst:.1f}s;"
                f" RSS {rss_before / 1e6:.0f} -> {rss_after / 1e6:.0f} MB;"
                f" reader delay max {max(delays) * 1000:.0f} ms"
            )
            assert renders * size > 25e6, "the burst is too small to tell bounded from unbounded"
            assert growth < 15e6, f"server RSS grew by {growth / 1e6:.1f} MB"
            assert max(delays) < 1.5, f"the reading client was delayed: {max(delays):.2f}s"

            # The stalled stream is closed by the server once it has been stuck STALL_TIMEOUT
            # (reading earlier would unstick it: it would go on as a healthy stream).
            # It got stuck early in the burst (the kernel buffers hold a few renders).
            time.sleep(max(0.0, burst_started + stall + 3 - time.monotonic()))
            stalled.settimeout(10)
            deadline = time.monotonic() + 10
            received = 0
            while time.monotonic() < deadline:
                try:
                    chunk = stalled.recv(1 << 20)
                except ConnectionResetError:
                    break  # aborted by the server: what it does to a client that stopped reading
                if not chunk:
                    break
                received += len(chunk)
            else:
                raise AssertionError("the server never closed the stalled stream")
            assert "client stopped reading" in server.log_tail(400)
        finally:
            stalled.close()


def test_database_url_round_trip() -> None:
    settings = {"NAME": "x y", "USER": "postgres", "HOST": "/tmp/a dir", "PORT": "5433"}
    import dj_database_url

    parsed = dj_database_url.parse(database_url(settings))
    assert (parsed["NAME"], parsed["HOST"], str(parsed["PORT"])) == ("x y", "/tmp/a dir", "5433")
