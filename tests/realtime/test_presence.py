"""Presence (realtime.presence): joins, leaves, states and reaping, on real PostgreSQL and HTTP."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError, connection, transaction
from django.test import override_settings

from realtime.conf import get_config
from realtime.presence import (
    Member,
    Presence,
    Tracker,
    _Row,
    present,
    present_by_topic,
    set_state,
    tab_digest,
)
from realtime.relay.registry import all_hubs
from realtime.testing import (
    EventStream,
    LiveServer,
    SSEEvent,
    capture_publishes,
    open_stream,
    post_command,
)
from tests.helpers import REALTIME_SETTINGS, ServerProcess, database_url, wait_for
from tests.realtime.helpers import RawStreams, tab_id


@contextmanager
def uvicorn_process() -> Iterator[int]:
    """A uvicorn subprocess serving the test views on the test database; yields its port."""
    with ServerProcess(
        database_url(),
        settings_module=REALTIME_SETTINGS,
        app="tests.realtime.asgi:application",
        measured=False,
    ) as server:
        yield server.port


_LI = re.compile(r"<li>(.*?)</li>")


def room(name: str = "lobby", who: str | None = None) -> str:
    return f"/test/rooms/{name}/" + (f"?who={who}" if who else "")


def members(event: SSEEvent) -> list[str]:
    return _LI.findall(event.elements)


def shows(*expected: str) -> Callable[[SSEEvent], bool]:
    """A room render listing exactly ``expected`` (``Name:state:tabs``), in joining order."""
    return lambda e: e.event == "datastar-patch-elements" and members(e) == list(expected)


def tracker() -> Tracker:
    (hub,) = [h for h in all_hubs() if not h.closed]
    return hub.attached(Tracker)


def entry_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM realtime_presence_entry")
        return int(cursor.fetchone()[0])


def test_watchers_see_joins_and_leaves(server: LiveServer) -> None:
    with open_stream(server.url + room(who="ann")) as ann:
        ann.next_event(shows("Ann:viewing:1"))
        with open_stream(server.url + room(who="bob")) as bob:
            bob.next_event(shows("Ann:viewing:1", "Bob:viewing:1"))
            ann.next_event(shows("Ann:viewing:1", "Bob:viewing:1"))
        left = time.monotonic()
        ann.next_event(shows("Ann:viewing:1"), timeout=1.0)
        assert time.monotonic() - left < 1.0
    wait_for(lambda: entry_count() == 0, timeout=2)


def test_present_reads_from_anywhere_one_per_user(server: LiveServer) -> None:
    with (
        open_stream(server.url + room(who="ann")) as a1,
        open_stream(server.url + room(who="ann")) as a2,
        open_stream(server.url + room("other", who="bob")),
    ):
        a1.next_event(shows("Ann:viewing:2"))
        a2.next_event(shows("Ann:viewing:2"))
        (ann,) = present("rooms.lobby")
        assert (ann.user_id, ann.name, ann.state, ann.tabs) == ("ann", "Ann", "viewing", 2)
        found = wait_for(
            lambda: (f := present_by_topic(["rooms.other", "rooms.empty"]))["rooms.other"] and f
        )
        assert [p.name for p in found["rooms.other"]] == ["Bob"]
        assert found["rooms.empty"] == []


def test_anonymous_streams_are_present_nowhere(server: LiveServer) -> None:
    with open_stream(server.url + room()) as anon:
        anon.next_event(shows())
        time.sleep(0.2)
        assert entry_count() == 0


def test_a_command_sets_its_tabs_state_which_lapses(server: LiveServer) -> None:
    tab = tab_id()
    with (
        open_stream(server.url + room(who="ann"), signals={"tab": tab}) as ann,
        open_stream(server.url + room(who="bob")) as bob,
    ):
        bob.next_event(shows("Ann:viewing:1", "Bob:viewing:1"))
        time.sleep(0.1)  # the joins are written
        response = post_command(
            server.url + "/test/rooms/lobby/state/",
            {"tab": tab, "state": "typing", "expires_in": 1},
        )
        assert response.status == 204
        bob.next_event(shows("Ann:typing:1", "Bob:viewing:1"))
        typed = time.monotonic()
        bob.next_event(shows("Ann:viewing:1", "Bob:viewing:1"), timeout=3)
        assert 0.8 < time.monotonic() - typed < 2.5
        ann.next_event(shows("Ann:viewing:1", "Bob:viewing:1"))


def test_a_tab_can_set_only_its_own_state(server: LiveServer) -> None:
    with open_stream(server.url + room(who="ann"), signals={"tab": tab_id()}) as ann:
        ann.next_event(shows("Ann:viewing:1"))
        time.sleep(0.1)
        # Another tab id of the same browser, and a forged one: nothing changes.
        for tab in (tab_id(), "x" * 38):
            assert (
                post_command(
                    server.url + "/test/rooms/lobby/state/", {"tab": tab, "state": "typing"}
                ).status
                == 204
            )
        with transaction.atomic():
            assert set_state(None, "typing") == 0
        assert [p.state for p in present("rooms.lobby")] == ["viewing"]


def test_set_state_refuses_bad_states(transactional_db: None) -> None:
    with pytest.raises(ValueError, match="presence state"):
        set_state("t" * 38, "x" * 33)


def test_many_joins_cost_a_few_writes(server: LiveServer) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    with open_stream(server.url + room(who="first")) as first:
        first.next_event(shows("First:viewing:1"))
        before = tracker().writes
        with RawStreams(port, room(who="crowd"), 200) as streams:
            streams.wait(lambda raw: b"Crowd:viewing:200" in raw, timeout=30)
            writes = tracker().writes - before
            # 200 joins in batches (one per 50 ms while they arrive), not 200 transactions.
            print(f"200 joins: {writes} transactions")
            assert writes <= 40, writes
            assert entry_count() == 201
    wait_for(lambda: entry_count() == 0, timeout=3)


def test_a_join_and_a_leave_in_one_batch_write_nothing(server: LiveServer) -> None:
    with open_stream(server.url + room(who="ann")) as ann:
        ann.next_event(shows("Ann:viewing:1"))
        time.sleep(0.1)
        before = tracker().writes
        t = tracker()
        hub = next(h for h in all_hubs() if not h.closed)
        assert hub.loop is not None

        def join_leave() -> None:
            t.leave(t.join(["rooms.lobby"], Member("zed", "Zed"), None))

        hub.loop.call_soon_threadsafe(join_leave)
        time.sleep(0.3)
        assert tracker().writes - before <= 1  # at most a heartbeat
        assert [p.name for p in present("rooms.lobby")] == ["Ann"]


def _stream(port: int, who: str | None) -> EventStream:
    return open_stream(f"http://127.0.0.1:{port}" + room(who=who))


@pytest.mark.slow
def test_across_processes_and_kill_9(transactional_db: None) -> None:
    """Two uvicorn processes: each sees the other's streams; a killed one's go within 10 s."""
    with (
        uvicorn_process() as port_a,
        uvicorn_process() as port_b,
        _stream(port_b, "bob") as bob,
    ):
        bob.next_event(shows("Bob:viewing:1"), timeout=10)
        with _stream(port_a, "ann") as ann:
            bob.next_event(shows("Bob:viewing:1", "Ann:viewing:1"), timeout=5)
            ann.next_event(shows("Bob:viewing:1", "Ann:viewing:1"), timeout=5)
        # A closed tab on the other process leaves within a second.
        left = time.monotonic()
        bob.next_event(shows("Bob:viewing:1"), timeout=1.0)
        assert time.monotonic() - left < 1.0
        ann = _stream(port_a, "ann")
        bob.next_event(shows("Bob:viewing:1", "Ann:viewing:1"), timeout=5)
        killed = time.monotonic()
        os.kill(_pid_listening(port_a), signal.SIGKILL)
        # Within PRESENCE_TTL + PRESENCE_HEARTBEAT (8 s) plus a render.
        bob.next_event(shows("Bob:viewing:1"), timeout=10)
        gone = time.monotonic() - killed
        ann.close()
        print(f"kill -9: gone from the other process's stream after {gone:.1f}s")


@pytest.mark.slow
def test_a_stopping_server_leaves_at_once(transactional_db: None) -> None:
    with uvicorn_process() as port_a, uvicorn_process() as port_b, _stream(port_b, "bob") as bob:
        bob.next_event(shows("Bob:viewing:1"), timeout=10)
        ann = _stream(port_a, "ann")
        bob.next_event(shows("Bob:viewing:1", "Ann:viewing:1"), timeout=5)
        stopped = time.monotonic()
        os.kill(_pid_listening(port_a), signal.SIGTERM)
        bob.next_event(shows("Bob:viewing:1"), timeout=2)
        ann.close()
        print(
            f"SIGTERM: gone from the other process's stream after {time.monotonic() - stopped:.2f}s"
        )


def _pid_listening(port: int) -> int:
    """The pid of the uvicorn serving ``port`` (the only process of its session)."""
    import psutil

    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == "LISTEN" and conn.pid:
            return int(conn.pid)
    raise AssertionError(f"nothing listens on {port}")


# The tracker's database work, driven directly ------------------------------------------------


def _written(tracker: Tracker, who: str, topic: str = "rooms.x") -> str:
    """Write one stream of ``who`` on ``topic`` for ``tracker`` as a batch would; its key."""
    key = f"{who}-{tracker.process_id}"[:32]
    rows = {key: [_Row(key, topic, "", Member(who, who.title()))]}
    tracker._write(rows, set(), last=False)
    tracker._live.update(rows)
    return key


def test_a_dead_process_is_reaped_once_and_a_paused_one_comes_back(
    transactional_db: None,
) -> None:
    alive, paused = Tracker(), Tracker()
    _written(alive, "ann")
    _written(paused, "bob")
    assert [p.name for p in present("rooms.x")] == ["Ann", "Bob"]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE realtime_presence_process SET last_seen = now() - interval '1 minute' "
            "WHERE id = %s",
            [paused.process_id],
        )
    # Readers ignore it at once; the other process's heartbeat deletes it and tells watchers.
    assert [p.name for p in present("rooms.x")] == ["Ann"]
    with capture_publishes() as published:
        alive._heartbeat()
        alive._heartbeat()  # nothing left to reap: nothing published twice
    assert published == [("presence.rooms.x", None)]
    assert entry_count() == 1
    # The paused process wakes up: its heartbeat finds its row gone and writes itself again.
    with capture_publishes() as published:
        paused._heartbeat()
    assert published == [("presence.rooms.x", None)]
    assert [p.name for p in present("rooms.x")] == ["Ann", "Bob"]


def test_a_clean_shutdown_leaves_at_once(transactional_db: None) -> None:
    tracker = Tracker()
    _written(tracker, "ann", "rooms.a")
    _written(tracker, "ann", "rooms.b")
    with capture_publishes() as published:
        tracker._depart()
    assert sorted(published) == [("presence.rooms.a", None), ("presence.rooms.b", None)]
    assert entry_count() == 0


def test_the_last_leave_removes_the_process_too(transactional_db: None) -> None:
    tracker = Tracker()
    key = _written(tracker, "ann")
    tracker._write({}, {key}, last=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM realtime_presence_process")
        assert cursor.fetchone()[0] == 0
    assert entry_count() == 0


def test_lapsed_states_are_swept_by_their_process(transactional_db: None) -> None:
    tracker = Tracker()
    _written(tracker, "ann")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE realtime_presence_entry SET state = 'typing', "
            "state_expires_at = now() - interval '1 second'"
        )
    assert [p.state for p in present("rooms.x")] == ["viewing"]  # readers never see it
    with capture_publishes() as published:
        tracker._sweep()
        tracker._sweep()
    assert published == [("presence.rooms.x", None)]


def _present(topic: str) -> list[Presence]:
    """:func:`present` on a worker thread, which keeps no connection open."""
    try:
        return present(topic)
    finally:
        connection.close()


async def test_a_failed_batch_is_written_on_the_next_try(
    transactional_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    write = Tracker._write
    calls: list[int] = []

    def flaky(self: Tracker, *args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("the database is away")
        write(self, *args, **kwargs)

    monkeypatch.setattr(Tracker, "_write", flaky)
    tracker = Tracker()
    key = tracker.join(["rooms.x"], Member("ann", "Ann"), None)
    deadline = time.monotonic() + 5
    while not await asyncio.to_thread(_present, "rooms.x"):
        assert time.monotonic() < deadline, "never written"
        await asyncio.sleep(0.05)
    tracker.leave(key)
    while await asyncio.to_thread(_present, "rooms.x"):
        assert time.monotonic() < deadline, "never left"
        await asyncio.sleep(0.05)
    assert len(calls) >= 3
    # Nothing present any more: the tracker stopped (no task, no connection held).
    assert tracker._task is None


def test_the_ttl_must_outlast_the_heartbeat() -> None:
    with (
        override_settings(REALTIME={"PRESENCE_HEARTBEAT": 5.0, "PRESENCE_TTL": 5.0}),
        pytest.raises(ImproperlyConfigured, match="PRESENCE_TTL"),
    ):
        get_config()


def test_set_state_writes_and_publishes_only_what_changes(transactional_db: None) -> None:
    tab = tab_id()
    key = "k" * 32
    Tracker()._write(
        {key: [_Row(key, "rooms.x", tab_digest(tab), Member("ann", "Ann"))]}, set(), last=False
    )
    with capture_publishes() as published, transaction.atomic():
        assert set_state(tab, None) == 0  # at rest already: nothing written
        assert set_state(tab, "typing", expires_in=4, topic="rooms.other") == 0
        assert set_state(tab, "typing", expires_in=4) == 1
        assert set_state(tab, "typing", expires_in=4) == 1  # extended: written, nobody woken
    assert published == [("presence.rooms.x", None)]
    with capture_publishes() as published, transaction.atomic():
        assert set_state(tab, None) == 1
    assert published == [("presence.rooms.x", None)]
