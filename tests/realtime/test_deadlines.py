"""One loop timer for every waiting stream: never early, at most a bucket late, disarmable."""

from __future__ import annotations

import asyncio
import math

from realtime.relay.deadlines import RESOLUTION, Deadlines


class Waiter:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.deadline_tick: int | None = None
        self.expired_at: float | None = None
        self.expired = asyncio.Event()
        self.loop = loop

    def expire(self) -> None:
        assert self.expired_at is None, "expired twice"
        self.expired_at = self.loop.time()
        self.expired.set()


async def test_expires_after_its_deadline_never_before() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    waiters = [Waiter(loop) for _ in range(5)]
    start = loop.time()
    for n, waiter in enumerate(waiters):
        deadlines.arm(waiter, start + 0.03 * (n + 1))
    await asyncio.sleep(0.03 * 5 + 3 * RESOLUTION)
    for n, waiter in enumerate(waiters):
        assert waiter.expired_at is not None
        late = waiter.expired_at - (start + 0.03 * (n + 1))
        assert 0 <= late < RESOLUTION + 0.2, late  # never early; late only by a busy machine
        assert waiter.deadline_tick is None
    assert len(deadlines) == 0


async def test_disarmed_waiter_is_not_expired() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    kept, disarmed = Waiter(loop), Waiter(loop)
    deadlines.arm(kept, loop.time() + 0.02)
    deadlines.arm(disarmed, loop.time() + 0.02)
    deadlines.disarm(disarmed)
    assert disarmed.deadline_tick is None
    await asyncio.sleep(0.02 + 3 * RESOLUTION)
    assert kept.expired_at is not None
    assert disarmed.expired_at is None
    deadlines.disarm(disarmed)  # disarming twice is harmless


async def test_arming_again_moves_the_deadline() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    waiter = Waiter(loop)
    start = loop.time()
    deadlines.arm(waiter, start + 60)
    deadlines.arm(waiter, start + 0.02)
    assert len(deadlines) == 1
    await asyncio.sleep(0.02 + 3 * RESOLUTION)
    assert waiter.expired_at is not None
    assert waiter.expired_at >= start + 0.02


async def test_many_waiters_share_one_loop_timer() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    waiters = [Waiter(loop) for _ in range(1000)]
    when = loop.time() + 0.05
    for waiter in waiters:
        deadlines.arm(waiter, when)
    assert len(loop._scheduled) <= 2  # type: ignore[attr-defined]  # this one (+ pytest's)
    await asyncio.sleep(0.05 + 3 * RESOLUTION)
    assert all(w.expired_at is not None for w in waiters)


async def test_an_earlier_deadline_rearms_the_timer() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    late, early = Waiter(loop), Waiter(loop)
    start = loop.time()
    deadlines.arm(late, start + 5)
    deadlines.arm(early, start + 0.02)
    await asyncio.sleep(0.02 + 3 * RESOLUTION)
    assert early.expired_at is not None
    assert late.expired_at is None
    deadlines.disarm(late)


async def test_arming_later_keeps_the_bucket_and_moves_on_when_it_comes() -> None:
    # A stream that woke for a change waits again with a later deadline: no bucket is touched
    # then; the waiter moves to its new deadline's bucket when its old one comes. (The later
    # deadline is far off, so a slow machine cannot make it pass during the test.)
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    waiter = Waiter(loop)
    start = loop.time()
    deadlines.arm(waiter, start + 0.02)
    tick = waiter.deadline_tick
    deadlines.arm(waiter, start + 60)
    assert waiter.deadline_tick == tick
    await asyncio.sleep(0.02 + 3 * RESOLUTION)
    assert waiter.expired_at is None
    assert waiter.deadline_tick == math.ceil((start + 60) / RESOLUTION)
    assert len(deadlines) == 1
    deadlines.disarm(waiter)


async def test_a_moved_waiter_expires_at_its_later_deadline_never_before() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    waiter = Waiter(loop)
    start = loop.time()
    deadlines.arm(waiter, start + 0.02)
    deadlines.arm(waiter, start + 0.08)
    await asyncio.wait_for(waiter.expired.wait(), 10)
    assert waiter.expired_at is not None
    assert waiter.expired_at >= start + 0.08


async def test_arming_for_never_disarms() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    waiter = Waiter(loop)
    deadlines.arm(waiter, loop.time() + 0.02)
    deadlines.arm(waiter, math.inf)
    assert waiter.deadline_tick is None
    assert len(deadlines) == 0
    await asyncio.sleep(0.02 + 3 * RESOLUTION)
    assert waiter.expired_at is None
