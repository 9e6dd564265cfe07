"""One timer for the timeouts of every waiting stream of an event loop.

Each stream waits for its next change with a timeout (its heartbeat, its refresh). An
``asyncio.timeout`` per wait allocates a context manager and a timer handle on every wake and
re-arms the loop's timer heap: at 10,000 streams, one notification paid for 10,000 of each (about
a seventh of the fan-out's CPU, measured with py-spy) and every one of them became work for the
garbage collector. Here deadlines are rounded *up* to :data:`RESOLUTION` and grouped in buckets
under a single loop timer: arming or disarming a wait is a set insertion or removal.

A stream that wakes for a change waits again at once, with a later deadline. Moving it to a later
bucket on every wake (a removal and an insertion) was 4 % of a notification's work at 10,000
streams (py-spy), so a waiter keeps the bucket it is in while its new deadline (``due``) is later:
when that bucket's time comes, a waiter whose ``due`` has not passed goes to the bucket of its
``due`` instead of expiring. An idle stream is thus moved once per deadline, not once per wake.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from typing import Protocol

#: Deadlines are rounded up to a multiple of this many seconds (never early, at most this late).
RESOLUTION = 0.02


class Expiring(Protocol):
    """What :class:`Deadlines` wakes: anything with a bucket slot, a deadline and ``expire``."""

    #: The bucket the waiter is in (None: none), kept by :class:`Deadlines`.
    deadline_tick: int | None
    #: Loop time after which the waiter expires, set by :meth:`Deadlines.arm`.
    due: float

    def expire(self) -> None: ...


class Deadlines:
    """Calls ``expire()`` on each waiter once its deadline (the latest it was armed for) has
    passed, unless disarmed first."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._buckets: dict[int, set[Expiring]] = {}
        self._ticks: list[int] = []  # heap of the buckets' ticks
        self._timer: asyncio.TimerHandle | None = None
        self._timer_tick: int | None = None

    def now(self) -> float:
        """The loop's clock, which deadlines are given in."""
        return self._loop.time()

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._buckets.values())

    def arm(self, waiter: Expiring, when: float) -> None:
        """Expire ``waiter`` at loop time ``when`` (or up to :data:`RESOLUTION` later; never
        when ``when`` is infinite)."""
        waiter.due = when
        if when == math.inf:
            self.disarm(waiter)
            return
        tick = _tick(when)
        armed = waiter.deadline_tick
        if armed is not None:
            if armed <= tick:
                return  # its bucket comes first, and moves it on to ``when`` then
            self.disarm(waiter)
        self._insert(waiter, tick)
        if self._timer_tick is None or tick < self._timer_tick:
            self._schedule(tick)

    def _insert(self, waiter: Expiring, tick: int) -> None:
        bucket = self._buckets.get(tick)
        if bucket is None:
            bucket = self._buckets[tick] = set()
            heapq.heappush(self._ticks, tick)
        bucket.add(waiter)
        waiter.deadline_tick = tick

    def disarm(self, waiter: Expiring) -> None:
        """Forget ``waiter``'s deadline (it no longer waits at all)."""
        tick = waiter.deadline_tick
        if tick is not None:
            waiter.deadline_tick = None
            bucket = self._buckets.get(tick)
            if bucket is not None:
                bucket.discard(waiter)  # an emptied bucket is dropped when its time comes

    def _schedule(self, tick: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(tick * RESOLUTION, self._fire)
        self._timer_tick = tick

    def _fire(self) -> None:
        self._timer = self._timer_tick = None
        now = self._loop.time()
        while self._ticks and self._ticks[0] * RESOLUTION <= now:
            for waiter in self._buckets.pop(heapq.heappop(self._ticks), ()):
                waiter.deadline_tick = None
                if waiter.due > now:  # armed again for later since it was put here
                    self._insert(waiter, _tick(waiter.due))
                else:
                    waiter.expire()
        if self._ticks:  # also when the loop's clock fired a hair early: armed again for it
            self._schedule(self._ticks[0])


def _tick(when: float) -> int:
    """The bucket of loop time ``when``: rounded up, never early."""
    return math.ceil(when / RESOLUTION)
