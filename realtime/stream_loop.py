"""The loop of one open stream: what it sends, and when. It knows no HTTP and no view.

Contract of :meth:`StreamLoop.pieces`:

- It subscribes first, then yields the full state (a render started after the subscription, so
  nothing committed in between is missed).
- Each wake with a change yields one render (latest state wins, however many notifications came);
  a render whose bytes equal the last one sent is not sent. Renders are shared by key
  (:mod:`realtime.rendering`), started ahead of waking the stream.
- Each private notice yields the bytes of ``render_notice`` (not shared).
- Time passing yields a fresh render every ``refresh_interval`` seconds, and an SSE comment once
  ``heartbeat`` seconds have passed without anything sent.
- When a control topic fires (the session ended, the user changed) or the stream reaches its
  maximum age, ``recheck`` runs before anything more is sent; when it returns bytes (the access
  is gone), those are the stream's last piece. A stream that reached its age ends either way
  (the client reconnects through the full request path). A recheck that fails ends the stream.
- It ends when its subscription closes (server shutdown, or the stall guard), also while a failing
  render is being retried; its ``finally`` releases the subscription and the shared key.

Every piece is ``(bytes, shared)``: whether the bytes are a render other streams may be sending
too (:mod:`realtime.encoding` compresses those once).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from realtime.counters import counters
from realtime.relay.hub import Hub, Subscription
from realtime.relay.registry import get_hub
from realtime.rendering import (
    SharedRenders,
    release_request_thread,
    run_sync,
    shared_renders,
)

logger = logging.getLogger("realtime")

#: What a stream sends when it has had nothing to send for a while (an SSE comment).
HEARTBEAT = b": keep-alive\n\n"
#: Seconds between attempts of a render that fails (the database is down, say), growing.
RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0)

Piece = tuple[bytes, bool]


class _Closed(Exception):
    """The subscription closed: the stream ends without sending more."""


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """What one stream renders, and from which topics. Built by the view, read by the loop."""

    #: Label for logs (the view's class name).
    name: str
    topics: list[str]
    #: Private topics (the tab's); their payloads go to :attr:`render_notice`.
    notice_topics: list[str]
    #: Streams with equal keys share renders; ``None`` renders for this stream alone.
    key: Hashable | None
    #: One complete render, as SSE bytes. Runs on a worker thread.
    render: Callable[[], bytes]
    #: The events of one private notice. Runs on a worker thread.
    render_notice: Callable[[Any], bytes]
    refresh_interval: float | None = None
    #: Topics that announce a change of the stream's authority (see :mod:`realtime.access`).
    control_topics: list[str] = field(default_factory=list)
    #: Re-checks the stream's authority, given the control topics that fired (none when the
    #: stream reached its age): ``None`` to go on, else the bytes of its last event. Runs on a
    #: worker thread.
    recheck: Callable[[set[str]], bytes | None] | None = None
    #: Seconds after which the stream ends (see above); ``None`` for never.
    max_age: float | None = None
    #: Called with the hub when the stream starts (on the event loop, before it subscribes);
    #: returns what to call when it ends (e.g. presence: join, then leave), or ``None``.
    start: Callable[[Hub], Callable[[], None] | None] | None = None


class _Schedule:
    """When the stream must send something although nothing changed: heartbeats and refreshes.

    Times are the event loop's; ``due`` is the earliest of them (``inf`` for never), the deadline
    of the stream's next wait.
    """

    __slots__ = ("_heartbeat", "_loop", "_refresh", "due", "end_at", "heartbeat_at", "refresh_at")

    def __init__(
        self, heartbeat: float | None, refresh: float | None, max_age: float | None
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._heartbeat = heartbeat or math.inf
        self._refresh = refresh or math.inf
        now = self._loop.time()
        self.heartbeat_at = now + self._heartbeat
        self.refresh_at = now + self._refresh
        self.end_at = now + (max_age or math.inf)
        self.due = min(self.heartbeat_at, self.refresh_at, self.end_at)

    def now(self) -> float:
        return self._loop.time()

    def sent(self, now: float, *, refreshed: bool) -> None:
        """Something was sent at ``now`` (a refresh, if ``refreshed``): the next heartbeat waits
        again."""
        self.heartbeat_at = now + self._heartbeat
        if refreshed:
            self.refresh_at = now + self._refresh
        self.due = min(self.heartbeat_at, self.refresh_at, self.end_at)


class StreamLoop:
    """The pieces of one stream (see the module docstring).

    It may be made off the event loop (where a view runs): it finds the running loop's hub
    (unless given one) when its pieces are first asked for.
    """

    __slots__ = ("_heartbeat", "_hub", "_shared", "_spec", "_view")

    _shared: SharedRenders  # the hub's, once the pieces are asked for

    def __init__(
        self, spec: StreamSpec, *, heartbeat: float | None, hub: Hub | None = None
    ) -> None:
        self._hub = hub
        self._spec = spec
        self._heartbeat = heartbeat
        self._view = counters.view(spec.name)

    async def pieces(self) -> AsyncIterator[Piece]:
        """Yield the stream's pieces until it ends."""
        if self._hub is None:
            self._hub = get_hub()
        spec, view, hub = self._spec, self._view, self._hub
        shared = self._shared = shared_renders(hub)
        # The subscription, the shared key held and the stream counted, until the stream ends:
        # all in this one generator (a context manager of their own would be one more frame for
        # each of 10,000 open streams).
        end = spec.start(hub) if spec.start is not None else None
        if spec.key is not None:
            shared.hold(spec.key)
        counters.open_streams += 1
        view.open_streams += 1
        try:
            async with hub.subscribe(
                spec.topics, spec.notice_topics, spec.control_topics
            ) as subscription:
                if subscription.closed:
                    return
                release_request_thread()
                if spec.key is not None:
                    subscription.on_change = shared.hook(spec.key, spec.render, view)
                body = await self._render(subscription, spec.key, hub.version, hub)
                yield body, True
                schedule = _Schedule(self._heartbeat, spec.refresh_interval, spec.max_age)
                # Each pass runs for every open stream on every notification: it takes the
                # shortest way (no coroutine of its own to wait, a finished shared render taken
                # as is, one look at the clock).
                while True:
                    waiter = subscription.waiter(schedule.due)
                    if waiter is not None:
                        await waiter
                    if subscription.closed:
                        return
                    now = schedule.now()
                    aged = now >= schedule.end_at
                    if subscription.controls or aged:
                        ending = await self._recheck(subscription.take_controls())
                        if ending is not None:
                            if ending:
                                yield ending, False
                            return
                        if aged:
                            return
                    if not subscription.woken:  # the wait's deadline passed
                        refresh = now >= schedule.refresh_at
                        if refresh:
                            # Time, not data, changed: a shared render of this version would be
                            # the same bytes again, so this one is rendered afresh (key None).
                            body = await self._render(subscription, None, hub.version, hub)
                            yield body, True
                        else:
                            counters.heartbeats_sent += 1
                            yield HEARTBEAT, True
                        schedule.sent(now, refreshed=refresh)
                        continue
                    changed, version, notices = subscription.consume()
                    sent = False
                    for _topic, payload in notices:
                        yield await run_sync(partial(spec.render_notice, payload)), False
                        sent = True
                    if changed:
                        rendered = (
                            None if spec.key is None else shared.ready(spec.key, version, view)
                        )
                        if rendered is None:
                            rendered = await self._render(subscription, spec.key, version, hub)
                        if rendered != body:  # a change that left this view's bytes alone
                            body, sent = rendered, True
                            yield body, True  # returns once the bytes were handed to the server
                        counters.rendered(version)
                    if sent:
                        schedule.sent(now, refreshed=False)
        except _Closed:
            return
        finally:
            counters.open_streams -= 1
            view.open_streams -= 1
            if spec.key is not None:
                shared.release(spec.key)
            if end is not None:
                end()

    async def _recheck(self, controls: set[str]) -> bytes | None:
        """The stream's last bytes if its authority is gone (``b""`` when the check itself
        failed: the stream ends, and its client reconnects through the full request path)."""
        recheck = self._spec.recheck
        if recheck is None:
            return None
        try:
            return await run_sync(partial(recheck, controls))
        except Exception:
            logger.warning(
                "realtime: %s could not re-check its access; ending the stream",
                self._spec.name,
                exc_info=True,
            )
            return b""

    async def _render(
        self, subscription: Subscription, key: Hashable | None, version: int, hub: Hub
    ) -> bytes:
        """Render (or share a render of ``key`` started at ``version`` or later), retrying while
        it fails; raises :class:`_Closed` when the subscription closes meanwhile."""
        attempt = 0
        while True:
            try:
                return await self._shared.render(
                    key, version, hub.version, self._spec.render, view=self._view
                )
            except Exception:
                delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
                logger.warning(
                    "realtime: %s failed to render; retrying in %ss",
                    self._spec.name,
                    delay,
                    exc_info=True,
                )
                attempt += 1
                # Not subscription.wait(): a pending change would end it at once, every time,
                # turning the backoff into a busy loop while the database is down.
                await asyncio.sleep(delay)
                if subscription.closed:
                    raise _Closed from None
