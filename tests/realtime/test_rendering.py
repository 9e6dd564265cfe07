"""Shared renders: one render per key, rendered ahead of waking its streams, coalesced, retried."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from realtime.counters import counters
from realtime.relay.hub import Hub, Subscription
from realtime.rendering import SharedRenders
from tests.realtime.helpers import FakeBackend

KEY = ("view", "same for everyone")


class Renderer:
    """A render function whose calls are counted and can be held at a gate."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = threading.Event()
        self.gate.set()
        self.fail = False

    def __call__(self) -> bytes:
        self.calls += 1
        self.gate.wait(5)
        if self.fail:
            raise RuntimeError("database down")
        return f"render {self.calls}".encode()


@pytest.fixture
def hub() -> Hub:
    return Hub(FakeBackend())


def woken(subscription: Subscription) -> bool:
    return subscription.woken


def render_ahead(shared: SharedRenders, subscription: Subscription, render: Renderer) -> None:
    """Wire a subscription to shared renders of KEY, as StreamView does for a stream."""
    shared.hold(KEY)
    subscription.on_change = shared.hook(KEY, render)


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 - set by render threads and loop callbacks
            await asyncio.sleep(0.005)


async def test_one_render_wakes_every_subscriber_with_the_bytes_ready(hub: Hub) -> None:
    shared, render = SharedRenders(), Renderer()
    render.gate.clear()
    async with hub.subscribe(["t"]) as a, hub.subscribe(["t"]) as b:
        render_ahead(shared, a, render)
        render_ahead(shared, b, render)
        before = counters.renders, counters.renders_shared
        hub.dispatch("t")
        await until(lambda: render.calls == 1)
        await asyncio.sleep(0.05)
        # The render started at once; nobody is woken to wait for it.
        assert render.calls == 1
        assert not woken(a)
        assert not woken(b)
        render.gate.set()
        await until(lambda: woken(a) and woken(b))
        for subscription in (a, b):
            changed, version, _ = subscription.consume()
            assert changed
            assert version >= hub.version
            body = await shared.render(KEY, version, hub.version, render)
            assert body == b"render 1"
        assert render.calls == 1
        # One render, taken by one stream for itself and shared with the other.
        assert (counters.renders - before[0], counters.renders_shared - before[1]) == (1, 1)


async def test_changes_during_a_render_share_one_follow_up_render(hub: Hub) -> None:
    shared, render = SharedRenders(), Renderer()
    async with hub.subscribe(["t"]) as subscription:
        render_ahead(shared, subscription, render)
        render.gate.clear()
        hub.dispatch("t")
        await until(lambda: render.calls == 1)
        for _ in range(10):  # published while the first render runs: it may not include them
            hub.dispatch("t")
        render.gate.set()
        # The first render's end wakes the stream and starts one more render for all ten.
        await until(lambda: render.calls == 2 and KEY not in shared.pending)
        # Its end wakes the stream from a done-callback, a loop iteration after the task is done.
        await until(lambda: subscription.version == hub.version)
        changed, version, _ = subscription.consume()
        assert changed
        assert version == hub.version
        assert await shared.render(KEY, version, hub.version, render) == b"render 2"
        await asyncio.sleep(0.05)
        assert render.calls == 2
        assert not woken(subscription)


async def test_a_failed_render_wakes_its_streams_to_render_themselves(hub: Hub) -> None:
    shared, render = SharedRenders(), Renderer()
    async with hub.subscribe(["t"]) as subscription:
        render_ahead(shared, subscription, render)
        render.fail = True
        errors = counters.render_errors
        hub.dispatch("t")
        await until(lambda: woken(subscription))
        assert counters.render_errors == errors + 1
        _changed, version, _ = subscription.consume()
        render.fail = False
        assert await shared.render(KEY, version, hub.version, render) == b"render 2"


async def test_releasing_the_last_holder_forgets_the_key(hub: Hub) -> None:
    shared, render = SharedRenders(), Renderer()
    async with hub.subscribe(["t"]) as subscription:
        render_ahead(shared, subscription, render)
        render.gate.clear()
        hub.dispatch("t")
        await until(lambda: render.calls == 1)
        hub.dispatch("t")
        assert KEY in shared.pending
        shared.release(KEY)
        assert KEY not in shared.pending
        assert KEY not in shared.entries
        render.gate.set()
        await until(lambda: woken(subscription))
        await asyncio.sleep(0.05)
        assert render.calls == 1  # no follow-up render for a key nobody holds


async def test_ready_takes_a_finished_fresh_render_without_waiting(hub: Hub) -> None:
    shared, render = SharedRenders(), Renderer()
    async with hub.subscribe(["t"]) as a, hub.subscribe(["t"]) as b:
        render_ahead(shared, a, render)
        render_ahead(shared, b, render)
        assert shared.ready(KEY, 0) is None  # nothing rendered yet
        render.gate.clear()
        hub.dispatch("t")
        await until(lambda: render.calls == 1)
        assert shared.ready(KEY, hub.version) is None  # still running
        render.gate.set()
        await until(lambda: woken(a) and woken(b))
        before = counters.renders_shared
        assert shared.ready(KEY, hub.version + 1) is None  # older than that change
        assert shared.ready(KEY, hub.version) == b"render 1"  # its first taker
        assert shared.ready(KEY, hub.version) == b"render 1"  # shared
        assert counters.renders_shared - before == 1
        render.fail = True
        hub.dispatch("t")
        await until(lambda: render.calls == 2 and shared.entries[KEY].task.done())
        assert shared.ready(KEY, hub.version) is None  # a failed render is never taken
