"""The in-process hub: routing, coalescing, bounded notices, resync, close, unsubscribe."""

from __future__ import annotations

import asyncio
import logging

import pytest

from realtime import InvalidTopic
from realtime.relay.hub import MAX_NOTICES, Hub, Subscription
from tests.realtime.helpers import FakeBackend


@pytest.fixture
def hub() -> Hub:
    return Hub(FakeBackend())


def woken(subscription: Subscription) -> bool:
    return subscription.woken


async def test_exact_topic_wakes_only_its_subscribers(hub: Hub) -> None:
    async with hub.subscribe(["tickets"]) as tickets, hub.subscribe(["users"]) as users:
        hub.dispatch("tickets")
        assert woken(tickets)
        assert not woken(users)
        assert tickets.consume() == (True, hub.version, [])


async def test_coalescing_many_notifications_one_change(hub: Hub) -> None:
    async with hub.subscribe(["tickets"]) as subscription:
        for _ in range(100):
            hub.dispatch("tickets")
        assert await subscription.wait(0) is True
        changed, version, notices = subscription.consume()
        assert (changed, version, notices) == (True, hub.version, [])
        # Everything was taken at once: nothing is left to render.
        assert await subscription.wait(0.01) is False
        assert subscription.consume() == (False, hub.version, [])


async def test_wait_times_out_without_notification(hub: Hub) -> None:
    async with hub.subscribe(["tickets"]) as subscription:
        assert await subscription.wait(0.01) is False


async def test_wait_wakes_a_sleeping_subscriber(hub: Hub) -> None:
    async with hub.subscribe(["tickets"]) as subscription:
        waiter = asyncio.create_task(subscription.wait(5))
        await asyncio.sleep(0)
        hub.dispatch("tickets")
        assert await asyncio.wait_for(waiter, 1) is True


async def test_version_stamps_each_dispatch(hub: Hub) -> None:
    async with hub.subscribe(["a"]) as subscription:
        start = subscription.version
        hub.dispatch("a")
        hub.dispatch("b")  # nobody watches it, the version moves anyway
        assert hub.version == start + 2
        assert subscription.consume()[1] == start + 1


@pytest.mark.parametrize(
    ("topic", "matches"),
    [
        ("tickets", False),
        ("tickets.42", True),
        ("tickets.42.comments", True),
        ("ticketsx.42", False),
        ("other.tickets.42", False),
    ],
)
async def test_prefix_pattern(hub: Hub, topic: str, matches: bool) -> None:
    async with hub.subscribe(["tickets.*"]) as subscription:
        hub.dispatch(topic)
        assert woken(subscription) is matches


async def test_nested_prefix_pattern(hub: Hub) -> None:
    async with hub.subscribe(["tickets.42.*"]) as subscription:
        hub.dispatch("tickets.43.x")
        assert not woken(subscription)
        hub.dispatch("tickets.42.x")
        assert woken(subscription)


async def test_subscription_watching_a_topic_twice_is_woken_once(hub: Hub) -> None:
    async with hub.subscribe(["tickets", "tickets.*"]) as subscription:
        hub.dispatch("tickets.1")
        hub.dispatch("tickets")
        assert subscription.consume()[0] is True
        assert hub.subscription_count == 1
        assert hub.topic_counts() == {"tickets": 1, "tickets.*": 1}


async def test_invalid_topics_are_refused_before_subscribing(hub: Hub) -> None:
    with pytest.raises(InvalidTopic):
        async with hub.subscribe(["bad topic"]):
            pass
    with pytest.raises(InvalidTopic):
        async with hub.subscribe(["ok"], notice_topics=["tab.*"]):
            pass
    assert hub.subscription_count == 0
    assert hub.backend.starts == 0  # type: ignore[attr-defined]


async def test_notices_carry_payloads_and_do_not_mark_changed(hub: Hub) -> None:
    async with hub.subscribe(["tickets"], notice_topics=["tab.abcdefgh"]) as subscription:
        hub.dispatch("tab.abcdefgh", {"message": "no"})
        assert woken(subscription)
        assert subscription.consume() == (
            False,
            subscription.version,
            [("tab.abcdefgh", {"message": "no"})],
        )
        hub.dispatch("tab.abcdefgh")  # a notice without payload carries nothing
        assert not woken(subscription)


async def test_notices_are_bounded_and_latest_win(hub: Hub) -> None:
    async with hub.subscribe([], notice_topics=["tab.abcdefgh"]) as subscription:
        for n in range(MAX_NOTICES + 10):
            hub.dispatch("tab.abcdefgh", n)
        _changed, _version, notices = subscription.consume()
        assert [payload for _topic, payload in notices] == list(range(10, MAX_NOTICES + 10))


async def test_dispatch_message_decodes_the_wire_format(hub: Hub) -> None:
    async with hub.subscribe(["a.b"], notice_topics=["tab.abcdefgh"]) as subscription:
        hub.dispatch_message("a.b")
        changed_at = hub.version
        hub.dispatch_message('tab.abcdefgh {"x":[1,2]}')
        # A notice does not move the version the stream must render at.
        assert subscription.consume() == (True, changed_at, [("tab.abcdefgh", {"x": [1, 2]})])


async def test_malformed_message_is_logged_and_ignored(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    async with hub.subscribe(["a"]) as subscription:
        with caplog.at_level(logging.WARNING, logger="realtime"):
            hub.dispatch_message("a {broken")
        assert not woken(subscription)
        assert "malformed notification" in caplog.text


async def test_resync_marks_every_state_subscription_changed(hub: Hub) -> None:
    async with (
        hub.subscribe(["a"]) as a,
        hub.subscribe(["b.*"]) as b,
        hub.subscribe([], notice_topics=["tab.abcdefgh"]) as notices_only,
    ):
        hub.resync()
        assert a.consume()[0] is True
        assert b.consume()[0] is True
        assert a.version == b.version == hub.version
        # A tab's private notices are not state: nothing to re-render.
        assert not woken(notices_only)


async def test_close_ends_every_subscription_now_and_later(hub: Hub) -> None:
    async with hub.subscribe(["a"]) as a:
        hub.close()
        assert a.closed
        assert await a.wait(0) is True
        async with hub.subscribe(["a"]) as later:
            assert later.closed
            assert hub.subscription_count == 1  # the closed one is not registered
    assert hub.subscription_count == 0


async def test_aclose_stops_the_backend(hub: Hub) -> None:
    async with hub.subscribe(["a"]) as a:
        await hub.aclose()
        assert a.closed
    assert hub.backend.stops == 1  # type: ignore[attr-defined]


async def test_backend_started_once_lazily(hub: Hub) -> None:
    assert hub.backend.starts == 0  # type: ignore[attr-defined]
    async with hub.subscribe(["a"]), hub.subscribe(["b"]):
        pass
    async with hub.subscribe(["c"]):
        pass
    assert hub.backend.starts == 1  # type: ignore[attr-defined]


async def test_concurrent_first_subscribers_share_one_start() -> None:
    backend = FakeBackend()
    hub = Hub(backend)

    async def subscriber() -> None:
        async with hub.subscribe(["a"]):
            await asyncio.sleep(0)

    await asyncio.gather(*(subscriber() for _ in range(10)))
    assert backend.starts == 1


async def test_leaving_removes_the_subscription(hub: Hub) -> None:
    async with hub.subscribe(["a", "b.*"], notice_topics=["tab.abcdefgh"]):
        assert hub.topic_counts() == {"a": 1, "b.*": 1, "tab.abcdefgh": 1}
    assert hub.subscription_count == 0
    assert hub.topic_counts() == {}
    assert hub._exact == {}
    assert hub._prefix == {}


async def test_an_exception_inside_removes_the_subscription(hub: Hub) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with hub.subscribe(["a", "b.*"]) as subscription:
            raise RuntimeError("boom")
    assert hub.subscription_count == 0
    hub.dispatch("a")
    assert not woken(subscription)


async def test_cancellation_inside_removes_the_subscription(hub: Hub) -> None:
    entered = asyncio.Event()

    async def stream() -> None:
        async with hub.subscribe(["a"]) as subscription:
            entered.set()
            await subscription.wait()

    task = asyncio.create_task(stream())
    await asyncio.wait_for(entered.wait(), 1)
    assert hub.subscription_count == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert hub.subscription_count == 0


async def test_removing_one_subscriber_keeps_the_others(hub: Hub) -> None:
    async with hub.subscribe(["a"]) as stays:
        async with hub.subscribe(["a"]):
            assert hub.topic_counts() == {"a": 2}
        assert hub.topic_counts() == {"a": 1}
        hub.dispatch("a")
        assert woken(stays)


class SlowBackend(FakeBackend):
    """A listener that takes until ``ready`` is set to start (or fails with ``error``)."""

    def __init__(self, error: Exception | None = None) -> None:
        super().__init__()
        self.ready = asyncio.Event()
        self.error = error

    async def start(self, hub: Hub) -> None:
        self.starts += 1
        await self.ready.wait()
        if self.error is not None:
            raise self.error


async def test_cancelled_while_the_listener_starts_leaves_nothing_behind() -> None:
    # A client that goes away at once: its stream is cancelled inside subscribe().
    backend = SlowBackend()
    hub = Hub(backend)

    async def stream() -> None:
        async with hub.subscribe(["a"], notice_topics=["tab.abcdefgh"]):
            raise AssertionError("never entered")

    task = asyncio.create_task(stream())
    await asyncio.sleep(0.01)
    assert hub.subscription_count == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert hub.subscription_count == 0
    assert hub.topic_counts() == {}
    # The listener's start was shielded: the next subscriber waits for the same one.
    later = asyncio.create_task(stream_once(hub))
    backend.ready.set()
    await asyncio.wait_for(later, 1)
    assert backend.starts == 1


async def stream_once(hub: Hub) -> None:
    async with hub.subscribe(["a"]):
        pass


async def test_a_listener_that_fails_to_start_leaves_nothing_behind() -> None:
    backend = SlowBackend(error=RuntimeError("no database"))
    backend.ready.set()
    hub = Hub(backend)
    with pytest.raises(RuntimeError, match="no database"):
        async with hub.subscribe(["a"]):
            pass
    assert hub.subscription_count == 0


def test_on_close_callbacks_run_once_when_the_hub_closes(hub: Hub) -> None:
    calls: list[str] = []
    hub.on_close(lambda: calls.append("closed"))
    assert calls == []
    hub.close()
    hub.close()
    assert calls == ["closed"]


async def test_a_subscription_not_made_by_a_hub_cannot_be_entered(hub: Hub) -> None:
    from realtime.relay.deadlines import Deadlines

    loose = Subscription(("a",), (), 0, Deadlines(asyncio.get_running_loop()))
    with pytest.raises(RuntimeError, match=r"Hub\.subscribe"):
        async with loose:
            pass


async def test_a_deadline_passed_while_busy_does_not_end_the_next_wait(hub: Hub) -> None:
    # The first wait's deadline stays armed after the change woke it (a stream re-arms for later
    # on every wake without moving buckets): it must not cut the next, longer wait short.
    async with hub.subscribe(["t"]) as subscription:
        hub.dispatch("t")
        assert await subscription.wait(0.02) is True
        subscription.consume()
        loop = asyncio.get_running_loop()
        start = loop.time()
        assert await subscription.wait(0.15) is False
        assert loop.time() - start >= 0.15
        hub.dispatch("t")
        assert await subscription.wait(0.02) is True
        subscription.consume()
        with pytest.raises(TimeoutError):  # no deadline at all now
            await asyncio.wait_for(subscription.wait(), 0.1)


async def test_leaving_forgets_the_wait_deadline(hub: Hub) -> None:
    async with hub.subscribe(["t"]) as subscription:
        hub.dispatch("t")
        assert await subscription.wait(5) is True
    assert subscription.deadline_tick is None
    assert hub._deadlines is not None
    assert len(hub._deadlines) == 0


async def test_subscriptions_sharing_a_hook_are_handed_to_it_in_one_call(hub: Hub) -> None:
    calls: list[tuple[list[Subscription], int]] = []

    def hook(subscriptions: list[Subscription], version: int) -> None:
        calls.append((subscriptions, version))

    async with (
        hub.subscribe(["t"]) as a,
        hub.subscribe(["t"]) as b,
        hub.subscribe(["t"]) as plain,
        hub.subscribe(["t"], notice_topics=["t.tab"]) as other_topic,
    ):
        a.on_change = b.on_change = hook
        hub.dispatch("t")
        assert len(calls) == 1
        subscriptions, version = calls[0]
        assert set(subscriptions) == {a, b}
        assert version == hub.version
        assert not woken(a)  # the hook wakes them (once their render is ready)
        assert woken(plain)
        assert woken(other_topic)
