"""realtime.sending: the stall guard where the server's connection cannot be found."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from realtime.counters import counters
from realtime.sending import send_pieces
from realtime.stream_loop import Piece


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
