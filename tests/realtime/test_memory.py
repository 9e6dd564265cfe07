"""The in-process backend: same contract as PostgreSQL's (delivered at commit, never on rollback),
within one process and without a LISTEN connection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db import transaction
from django.test import override_settings

from realtime import publish, stats
from realtime.notices import CommandNotice
from realtime.relay.base import backend_class
from realtime.relay.memory import MemoryBackend
from realtime.testing import EventStream, LiveServer, open_stream, tab_id
from tests.helpers import wait_for
from tests.realtime import views
from tests.realtime.helpers import GROUPS, add_group, is_patch, listener_backends, shows

MEMORY = "realtime.relay.memory.MemoryBackend"


@pytest.fixture
def memory_server(transactional_db: None) -> Iterator[LiveServer]:
    """A live server whose hub uses the memory backend (the setting is read when it is made)."""
    with (
        override_settings(REALTIME={**settings.REALTIME, "BACKEND": MEMORY}),
        LiveServer() as live,
    ):
        yield live


@pytest.fixture
def stream(memory_server: LiveServer) -> Iterator[EventStream]:
    with open_stream(memory_server.url + GROUPS) as events:
        events.next_event(shows(), timeout=5)
        yield events


def test_the_setting_selects_the_backend() -> None:
    assert backend_class().__name__ == "PostgresBackend"
    with override_settings(REALTIME={"BACKEND": MEMORY}):
        assert backend_class() is MemoryBackend


def test_a_backend_must_be_a_backend() -> None:
    with (
        override_settings(REALTIME={"BACKEND": "django.http.HttpResponse"}),
        pytest.raises(TypeError, match="is not a realtime Backend class"),
    ):
        backend_class()


def test_delivered_at_commit(stream: EventStream) -> None:
    with transaction.atomic():
        add_group("inside")
        with pytest.raises(TimeoutError):
            stream.next_event(is_patch, timeout=0.3)
    stream.next_event(shows("inside"), timeout=5)


def test_not_delivered_on_rollback(stream: EventStream) -> None:
    renders, received = views.render_count, stats()["notifications_received"]
    with transaction.atomic():
        publish("groups")
        transaction.set_rollback(True)
    publish("unwatched")  # delivered after the rolled-back one would have been
    wait_for(lambda: stats()["notifications_received"] > received, what="the delivery")
    # A render of the unchanged rows would not be sent: count renders up to a later change.
    add_group("after")
    stream.next_event(shows("after"), timeout=5)
    assert views.render_count == renders + 1, "the rolled-back publish woke the stream"


def test_outside_a_transaction_delivered_at_once(stream: EventStream) -> None:
    add_group("now", notify=False)
    publish("groups")
    stream.next_event(shows("now"), timeout=5)


def test_private_notices_reach_the_tab(memory_server: LiveServer) -> None:
    tab = tab_id()
    with open_stream(memory_server.url + GROUPS, signals={"tab": tab}) as events:
        events.next_event(shows(), timeout=5)
        notice = CommandNotice("Rename", 409, "Only for you")
        publish(f"tab.{tab}", notice.to_payload())
        toast = events.next_event(lambda e: e.selector == "#realtime-toasts", timeout=5)
        assert "Only for you" in toast.elements


def test_no_listen_connection(memory_server: LiveServer) -> None:
    before = listener_backends()
    with open_stream(memory_server.url + GROUPS) as events:
        events.next_event(timeout=5)
        assert listener_backends() == before


async def test_hubs_register_and_unregister() -> None:
    from realtime.relay.hub import Hub

    backend = MemoryBackend()
    hub = Hub(backend)
    async with hub.subscribe(["groups"]) as subscription:
        assert hub in MemoryBackend._hubs
        MemoryBackend._deliver("groups")
        assert await subscription.wait(1)
    await hub.aclose()
    assert hub not in MemoryBackend._hubs
    await MemoryBackend().stop()  # never started: nothing to do
