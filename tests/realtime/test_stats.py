"""``realtime.stats()``: per-process counters that move exactly as streams and publishes do."""

from __future__ import annotations

import pytest

from realtime import publish, stats
from realtime.testing import LiveServer, open_stream
from tests.helpers import wait_for
from tests.realtime.helpers import GROUPS, add_group, shows

KEYS = {
    "open_streams",
    "subscriptions",
    "notifications_received",
    "publishes",
    "renders",
    "renders_shared",
    "render_errors",
    "listener_connects",
    "listener_reconnects",
    "listener_misconfigured",
    "resyncs",
    "events_sent",
    "bytes_sent",
    "heartbeats_sent",
    "stalled_disconnects",
    "seconds_since_last_notification",
}


def delta(before: dict[str, object], *keys: str) -> dict[str, int]:
    after = stats()
    return {key: int(after[key]) - int(before[key]) for key in keys}  # type: ignore[call-overload]


def test_keys_and_snapshot() -> None:
    snapshot = stats()
    assert set(snapshot) == KEYS
    snapshot["renders"] = -1
    snapshot["subscriptions"]["x"] = 1
    assert stats()["renders"] != -1
    assert "x" not in stats()["subscriptions"]


@pytest.mark.django_db
def test_publishes_count_calls() -> None:
    before = stats()
    publish("groups")
    publish("groups", {"a": 1})
    assert delta(before, "publishes") == {"publishes": 2}


def test_stream_counters(server: LiveServer) -> None:
    before = stats()
    with open_stream(server.url + GROUPS, signals={"who": "first"}) as first:
        event = first.next_event(timeout=5)
        assert delta(before, "open_streams", "renders", "renders_shared", "events_sent") == {
            "open_streams": 1,
            "renders": 1,
            "renders_shared": 0,
            "events_sent": 1,
        }
        # Every byte counted is a byte the client received (identity encoding here).
        wait_for(lambda: stats()["bytes_sent"] - before["bytes_sent"] == len(first.raw))
        assert event.elements.encode() in bytes(first.raw)
        assert stats()["subscriptions"]["groups"] == 1

        with open_stream(server.url + GROUPS, signals={"who": "first"}) as twin:
            twin.next_event(timeout=5)
            # Same view, same signals, nothing changed: the first render's bytes are reused.
            assert delta(before, "open_streams", "renders", "renders_shared") == {
                "open_streams": 2,
                "renders": 1,
                "renders_shared": 1,
            }
            mid = stats()
            add_group("counted")
            first.next_event(shows("counted"), timeout=5)
            twin.next_event(shows("counted"), timeout=5)
            changes = delta(
                mid, "notifications_received", "renders", "renders_shared", "events_sent"
            )
            assert changes == {
                "notifications_received": 1,
                "renders": 1,
                "renders_shared": 1,
                "events_sent": 2,
            }
            since = stats()["seconds_since_last_notification"]
            assert since is not None
            assert 0 <= since < 5
    wait_for(lambda: stats()["open_streams"] == before["open_streams"])
    assert "groups" not in stats()["subscriptions"]


def test_heartbeats_are_counted(server: LiveServer) -> None:
    with open_stream(server.url + GROUPS) as stream:
        stream.next_event(timeout=5)
        before = stats()
        # HEARTBEAT is 1 s in the test settings.
        wait_for(lambda: b": keep-alive" in stream.raw, timeout=3, what="a heartbeat")
        assert delta(before, "heartbeats_sent")["heartbeats_sent"] >= 1


def test_notifications_for_nobody_still_count(server: LiveServer) -> None:
    with open_stream(server.url + GROUPS) as stream:
        stream.next_event(timeout=5)  # the listener runs
        before = stats()
        publish("nobody.listens")
        wait_for(lambda: stats()["notifications_received"] > before["notifications_received"])
        assert delta(before, "renders")["renders"] == 0
