"""realtime.sending: the stall guard where the server's connection cannot be found."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator
from typing import Any

import pytest

from realtime.counters import counters
from realtime.sending import _stall_watch, send_pieces
from realtime.stream_loop import Piece


async def pieces() -> AsyncIterator[Piece]:
    """A stream that always has one more event."""
    while True:
        yield b"data: x\n\n", False


async def stop_reading(stall_timeout: float) -> None:
    """A client that takes one chunk, then reads no more."""
    body = send_pieces(pieces(), encoder=None, stall_timeout=stall_timeout, scope=None)
    await body.__anext__()
    await asyncio.sleep(5)


async def test_without_a_connection_to_abort_the_stream_and_its_task_end() -> None:
    ended = asyncio.Event()

    async def pieces() -> AsyncIterator[Piece]:
        try:
            while True:
                yield b"data: x\n\n", False
        finally:
            ended.set()

    async def slow_client() -> None:
        body = send_pieces(pieces(), encoder=None, stall_timeout=0.05, scope=None)
        await body.__anext__()
        await asyncio.sleep(5)  # never asks for the next chunk: stalled

    before = counters.stalled_disconnects
    task = asyncio.create_task(slow_client())
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    await asyncio.wait_for(ended.wait(), 1)  # the pieces were closed: subscription freed
    assert counters.stalled_disconnects == before + 1


async def test_no_stall_timeout_no_timer() -> None:
    async def pieces() -> AsyncIterator[Piece]:
        yield b"one", False
        yield b"two", False

    chunks = [c async for c in send_pieces(pieces(), encoder=None, stall_timeout=0)]
    assert chunks == [b"one", b"two"]


async def test_the_streams_of_a_loop_share_one_stall_timer() -> None:
    """Sends that do not block arm no timer each; a stalled stream ends, a reading one goes on."""
    loop = asyncio.get_running_loop()
    watch = _stall_watch(loop)
    armed: list[float] = []
    call_at = loop.call_at

    def counting_call_at(when: float, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        armed.append(when)
        return call_at(when, *args, **kwargs)

    async def reader(events: int) -> int:
        body = send_pieces(pieces(), encoder=None, stall_timeout=0.1, scope=None)
        read = 0
        async for _ in body:
            read += 1
            if read == events:
                await body.aclose()
        return read

    loop.call_at = counting_call_at  # type: ignore[method-assign]
    try:
        assert await asyncio.gather(*(reader(100) for _ in range(100))) == [100] * 100
        assert len(armed) <= 1, "10,000 sends armed one timer at most"
        assert watch.sending == {}, "no send left in progress"

        before = counters.stalled_disconnects
        stalling = asyncio.create_task(stop_reading(0.1))
        assert await reader(1000) == 1000  # another stream goes on meanwhile
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(stalling, 2)
        assert counters.stalled_disconnects == before + 1
        assert watch.sending == {}
    finally:
        loop.call_at = call_at  # type: ignore[method-assign]


def test_a_closed_loop_is_not_kept_alive_by_its_stall_watch() -> None:
    async def one_send() -> None:
        body = send_pieces(pieces(), encoder=None, stall_timeout=30, scope=None)
        await body.__anext__()
        await body.aclose()

    loop = asyncio.new_event_loop()
    loop.run_until_complete(one_send())  # leaves a check armed 30 s ahead
    loop.close()
    gone = weakref.ref(loop)
    del loop
    gc.collect()
    assert gone() is None


async def test_a_check_run_early_still_ends_the_stalled_stream() -> None:
    """asyncio may run a timer up to its clock's resolution before its time: the check must
    still end a send due then, and the watch must go on checking later sends."""
    loop = asyncio.get_running_loop()
    call_at = loop.call_at

    def early_call_at(when: float, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        # Early by far more than a clock's resolution, so the loop's own rounding of its
        # wait (up, to a millisecond) cannot hide it.
        return call_at(when - 0.01, *args, **kwargs)

    loop.call_at = early_call_at  # type: ignore[method-assign]
    try:
        before = counters.stalled_disconnects
        for _ in range(2):  # the first, then one after it: the watch is still alive
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(asyncio.create_task(stop_reading(0.05)), 2)
        assert counters.stalled_disconnects == before + 2
    finally:
        loop.call_at = call_at  # type: ignore[method-assign]
