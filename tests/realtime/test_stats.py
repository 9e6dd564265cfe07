"""``realtime.stats()``: per-process counters that move exactly as streams and publishes do."""

from __future__ import annotations

import pytest

from realtime import publish, stats
from realtime.testing import LiveServer, open_stream, post_command
from tests.helpers import wait_for
from tests.realtime.helpers import ADD, GROUPS, add_group, shows

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
    "listening",
    "resyncs",
    "events_sent",
    "bytes_sent",
    "bytes_raw",
    "heartbeats_sent",
    "stalled_disconnects",
    "seconds_since_last_notification",
    "notification_latency",
    "views",
    "commands",
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


def test_per_view_counters_latency_and_commands(server: LiveServer) -> None:
    """The per-view counters add up to the process's; a command's answers are counted by status;
    a notification that reached a stream is one latency sample."""

    def view() -> dict[str, int]:
        return dict(stats()["views"].get("GroupsStream") or {"renders": 0})

    before, before_view = stats(), view()
    before_commands = stats()["commands"].get("AddGroup", {"by_status": {}})["by_status"]
    with open_stream(server.url + GROUPS, signals={"who": "per-view"}) as stream:
        stream.next_event(timeout=5)
        assert view()["open_streams"] == before_view.get("open_streams", 0) + 1
        assert post_command(server.url + ADD, {"name": "per-view"}).status == 204
        assert post_command(server.url + ADD, {"name": "x"}).status == 422
        stream.next_event(shows("per-view"), timeout=5)
        wait_for(
            lambda: (
                stats()["notification_latency"]["count"] > before["notification_latency"]["count"]
            )
        )
        # Every byte counted is a byte the client received (heartbeats may add some meanwhile).
        wait_for(lambda: view()["bytes_sent"] - before_view.get("bytes_sent", 0) == len(stream.raw))
        after, after_view = stats(), view()
    assert (
        after_view["renders"] - before_view["renders"] == after["renders"] - before["renders"] == 2
    )
    assert after_view["events_sent"] - before_view.get("events_sent", 0) >= 2
    # Identity encoding here: as many bytes before compression as on the wire.
    assert after_view["bytes_raw"] - before_view.get("bytes_raw", 0) == len(stream.raw)
    assert after_view["render_seconds"]["count"] >= 2
    by_status = after["commands"]["AddGroup"]["by_status"]
    assert by_status.get(204, 0) - before_commands.get(204, 0) == 1
    assert by_status.get(422, 0) - before_commands.get(422, 0) == 1
    assert after["notification_latency"]["count"] - before["notification_latency"]["count"] == 1
    wait_for(lambda: view()["open_streams"] == before_view.get("open_streams", 0))
