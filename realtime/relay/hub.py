"""In-process fan-out from topics to subscriptions, with coalescing and resync.

Contract:

- One :class:`Hub` per event loop (in a server process: one), created on first use by
  :func:`realtime.relay.registry.get_hub`. It knows nothing of PostgreSQL or HTTP: a backend
  feeds it messages. It imports no other part of the app but its leaves (topics, deadlines,
  counters): the registry, the backends and the streams import it, never the other way round.
- A :class:`Subscription` is *changed* or not: however many notifications arrive while its stream
  is busy, the stream sees one change and renders once more (latest state wins). State is bounded:
  a flag, a version number and at most ``MAX_NOTICES`` private notices (oldest dropped first).
- Every dispatch bumps :attr:`Hub.version`. A stream woken at version *v* needs a render that
  started at *v* or later; shared renders use that to decide whether they are fresh enough.
- A subscription's *control* topics (a session's, a user's) wake it with the topic remembered
  instead of a change: the stream re-checks its authority before it sends anything more.
- :meth:`Hub.resync` marks every subscription changed, and every control topic fired (used after
  the listener lost messages, which may have been a logout).
- :meth:`Hub.close` ends every subscription (server shutdown); later subscriptions start closed.

Threading: all methods run on the hub's event loop. Other threads use
``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any, Protocol, TypeVar, cast

from realtime.counters import counters
from realtime.relay.deadlines import Deadlines
from realtime.relay.topics import decode, validate_topic

logger = logging.getLogger("realtime")

T = TypeVar("T")

#: Private notices kept per subscription while its stream is busy; older ones are dropped.
MAX_NOTICES = 16


class Listener(Protocol):
    """What the hub needs of a relay backend (see :class:`realtime.relay.base.Backend`)."""

    async def start(self, hub: Hub) -> None: ...

    async def stop(self) -> None: ...


#: A subscription's topics of one kind: a few, distinct (a tuple: a frozenset of one topic costs
#: three times the memory, for each of 10,000 open streams).
Topics = tuple[str, ...]


def _distinct(topics: Iterable[str]) -> Topics:
    return tuple(dict.fromkeys(topics))


class Subscription:
    """One stream's interest in some topics; woken by the hub, consumed by the stream.

    It is also the async context manager :meth:`Hub.subscribe` returns: entering registers it
    with its hub (and waits for the listener), leaving removes it. An idle subscription holds
    no event object: a future exists only while its stream waits, and the notices' deque and the
    fired control topics only once there are some (10,000 open streams hold 10,000 of these);
    its topics are tuples.
    """

    __slots__ = (
        "_deadlines",
        "_hub",
        "_waiter",
        "_woken",
        "changed",
        "closed",
        "control_topics",
        "controls",
        "deadline_tick",
        "due",
        "notice_topics",
        "notices",
        "on_change",
        "topics",
        "version",
    )

    def __init__(
        self,
        topics: Topics,
        notice_topics: Topics,
        version: int,
        deadlines: Deadlines,
        control_topics: Topics = (),
        hub: Hub | None = None,
    ) -> None:
        self.topics = topics
        self.notice_topics = notice_topics
        self.control_topics = control_topics
        #: The control topics published since the stream last looked (see :meth:`take_controls`).
        self.controls: set[str] | None = None
        self.changed = False
        self.closed = False
        self.version = version
        self.notices: deque[tuple[str, Any]] | None = None
        self._woken = False
        self._waiter: asyncio.Future[None] | None = None
        self._deadlines = deadlines
        self._hub = hub
        self.deadline_tick: int | None = None
        self.due = math.inf
        #: Called by the hub, instead of :meth:`mark_changed`, when a watched topic is published
        #: (shared renders use it to render first and wake the stream once the bytes are ready).
        #: Called once per notification with every subscription that has this same hook.
        self.on_change: Callable[[list[Subscription], int], None] | None = None

    async def __aenter__(self) -> Subscription:
        hub = self._hub
        if hub is None:
            raise RuntimeError("This subscription was not made by Hub.subscribe().")
        counters.subscriptions += 1
        # A caller cancelled while the listener starts (a client that leaves at once) must not
        # leave its subscription behind: ``async with`` calls no __aexit__ when this raises.
        try:
            if hub.closed:
                self.close()
            else:
                hub._add(self)
                await hub.ensure_started()
        except BaseException:
            self._leave(hub)
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._hub is not None:
            self._leave(self._hub)

    def _leave(self, hub: Hub) -> None:
        counters.subscriptions -= 1
        hub._remove(self)
        self._deadlines.disarm(self)

    @property
    def woken(self) -> bool:
        """Whether :meth:`wait` would return at once."""
        return self._woken

    def _wake(self) -> None:
        self._woken = True
        self._end_wait()

    def _end_wait(self) -> None:
        """End the stream's wait, if it is waiting."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def mark_changed(self, version: int) -> None:
        """Wake the stream: it needs a render started at hub ``version`` or later."""
        self.changed = True
        if version > self.version:
            self.version = version
        # _wake() and _end_wait(), inlined: this runs for every stream on every notification.
        self._woken = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def add_notice(self, topic: str, payload: Any) -> None:
        if self.notices is None:
            self.notices = deque(maxlen=MAX_NOTICES)
        self.notices.append((topic, payload))
        self._wake()

    def add_control(self, topic: str) -> None:
        """A control topic was published: wake the stream to re-check its authority."""
        if self.controls is None:
            self.controls = set()
        self.controls.add(topic)
        self._wake()

    def take_controls(self) -> set[str]:
        """The control topics published since the last call (and forget them)."""
        controls, self.controls = self.controls, None
        return controls if controls is not None else set()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def expire(self) -> None:
        """The wait's deadline passed (called by :class:`Deadlines`): end the wait, unwoken."""
        self._end_wait()

    def waiter(self, deadline: float = math.inf) -> asyncio.Future[None] | None:
        """A future that is done once the subscription is woken (changed, noticed, closed) or the
        loop time ``deadline`` has passed, whichever comes first; ``None`` when it is woken
        already. Afterwards :attr:`woken` tells which.

        The wait of a stream's loop: :meth:`wait` costs a coroutine more on every wake.
        """
        if self._woken:
            return None
        self._deadlines.arm(self, deadline)
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        return waiter

    async def wait(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until changed, noticed or closed; ``False`` when ``timeout`` passed first."""
        if self._woken:
            return True
        if timeout is not None and timeout <= 0:
            return False
        deadline = math.inf if timeout is None else self._deadlines.now() + timeout
        waiter = self.waiter(deadline)
        if waiter is not None:
            await waiter
        return self._woken

    def consume(self) -> tuple[bool, int, list[tuple[str, Any]]]:
        """Take what happened since the last call: (changed, version, notices)."""
        changed, self.changed = self.changed, False
        notices = list(self.notices) if self.notices else []
        self.notices = None
        self._woken = False
        return changed, self.version, notices


class Hub:
    """Routes messages to subscriptions by exact topic or ``prefix.*`` pattern."""

    def __init__(self, backend: Listener, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.backend = backend
        self.loop = loop
        self.version = 0
        self.closed = False
        self._exact: dict[str, set[Subscription]] = {}
        self._prefix: dict[str, set[Subscription]] = {}
        self._started: asyncio.Task[None] | None = None
        self._deadlines: Deadlines | None = None
        self._attached: dict[Callable[[], Any], Any] = {}
        self._closers: list[Callable[[], None]] = []

    def attached(self, factory: Callable[[], T]) -> T:
        """The one object ``factory`` makes for this hub (per-loop caches of other modules)."""
        if factory not in self._attached:
            self._attached[factory] = factory()
        return cast(T, self._attached[factory])

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on the hub's loop) when the hub closes (presence leaves with it)."""
        self._closers.append(callback)

    @property
    def subscription_count(self) -> int:
        return len({s for subs in (*self._exact.values(), *self._prefix.values()) for s in subs})

    def topic_counts(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for topic, subs in self._exact.items():
            counts[topic] += len(subs)
        for prefix, subs in self._prefix.items():
            counts[prefix + "*"] += len(subs)
        return counts

    def subscribe(
        self,
        topics: Iterable[str],
        notice_topics: Iterable[str] = (),
        control_topics: Iterable[str] = (),
    ) -> Subscription:
        """Watch ``topics`` (state changes), ``notice_topics`` (private payloads) and
        ``control_topics`` (authority changes): ``async with hub.subscribe(...) as s:`` watches
        them until exit.

        The listener is running once the block is entered, so nothing committed after the
        caller's first read can be missed.
        """
        state = _distinct(validate_topic(t, pattern=True) for t in topics)
        notices = _distinct(validate_topic(t) for t in notice_topics)
        controls = _distinct(validate_topic(t) for t in control_topics)
        if self._deadlines is None:
            self._deadlines = Deadlines(asyncio.get_running_loop())
        return Subscription(state, notices, self.version, self._deadlines, controls, self)

    def _add(self, subscription: Subscription) -> None:
        for topic in chain(
            subscription.topics, subscription.notice_topics, subscription.control_topics
        ):
            table, key = (
                (self._prefix, topic[:-1]) if topic.endswith(".*") else (self._exact, topic)
            )
            table.setdefault(key, set()).add(subscription)

    def _remove(self, subscription: Subscription) -> None:
        for topic in chain(
            subscription.topics, subscription.notice_topics, subscription.control_topics
        ):
            table, key = (
                (self._prefix, topic[:-1]) if topic.endswith(".*") else (self._exact, topic)
            )
            subs = table.get(key)
            if subs is not None:
                subs.discard(subscription)
                if not subs:
                    del table[key]

    async def ensure_started(self) -> None:
        """Start the backend's listener once, lazily, and wait until it listens."""
        if self._started is None:
            self._started = asyncio.ensure_future(self.backend.start(self))
        await asyncio.shield(self._started)

    def dispatch_message(self, message: str) -> None:
        """Handle one raw NOTIFY message (``topic`` or ``topic <json>``)."""
        try:
            topic, payload = decode(message)
        except ValueError:
            logger.warning("realtime: ignoring a malformed notification %r", message[:200])
            return
        self.dispatch(topic, payload)

    def dispatch(self, topic: str, payload: Any = None) -> None:
        """Wake every subscription watching ``topic``."""
        counters.notifications_received += 1
        counters.last_notification_at = time.monotonic()
        self.version += 1
        version, changed = self.version, False
        # Subscriptions that share a hook (the streams of one shared render) are handed to it
        # in one call: a call per subscription was most of a dispatch to 10,000 streams.
        hooked: dict[Callable[[list[Subscription], int], None], list[Subscription]] = {}
        for subscription in self._matching(topic):
            if topic in subscription.control_topics:
                subscription.add_control(topic)
            elif topic in subscription.notice_topics:
                if payload is not None:
                    subscription.add_notice(topic, payload)
            else:
                changed = True
                hook = subscription.on_change
                if hook is None:
                    subscription.mark_changed(version)
                elif (group := hooked.get(hook)) is not None:
                    group.append(subscription)
                else:
                    hooked[hook] = [subscription]
        for hook, group in hooked.items():
            hook(group, version)
        if changed:  # its latency runs until a stream has rendered it
            counters.notified(version)

    def _matching(self, topic: str) -> set[Subscription]:
        found = set(self._exact.get(topic, ()))
        if self._prefix:
            parts = topic.split(".")
            for i in range(1, len(parts)):
                found.update(self._prefix.get(".".join(parts[:i]) + ".", ()))
        return found

    def resync(self) -> None:
        """Mark every subscription changed: notifications may have been lost."""
        counters.resyncs += 1
        self.version += 1
        for subs in (*self._exact.values(), *self._prefix.values()):
            for subscription in subs:
                if subscription.topics:
                    subscription.mark_changed(self.version)
                for topic in subscription.control_topics:
                    subscription.add_control(topic)

    def close(self) -> None:
        """End every subscription, now and to come (server shutdown)."""
        self.closed = True
        for subs in (*self._exact.values(), *self._prefix.values()):
            for subscription in subs:
                subscription.close()
        closers, self._closers = self._closers, []
        for callback in closers:
            callback()

    async def aclose(self) -> None:
        """Close every subscription and stop the backend's listener."""
        self.close()
        await self.backend.stop()
