"""Presence (realtime.presence): joins, leaves, states and reaping, on real PostgreSQL and HTTP."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable

import pytest
from django.db import connection, transaction

from realtime.presence import Member, Tracker, present, present_by_topic, set_state
from realtime.relay.registry import all_hubs
from realtime.testing import EventStream, LiveServer, SSEEvent, open_stream, post_command
from tests.realtime.conftest import RawStreams, tab_id, uvicorn_process, wait_for

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


def _pid_listening(port: int) -> int:
    """The pid of the uvicorn serving ``port`` (the only process of its session)."""
    import psutil

    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == "LISTEN" and conn.pid:
            return int(conn.pid)
    raise AssertionError(f"nothing listens on {port}")
