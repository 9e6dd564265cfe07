"""Sending a stream's pieces: encoding, counting, and the stall guard.

:func:`send_pieces` turns pieces into the bytes of the response (compressed when an encoder is
given) and counts them. The response's body iterator is suspended at each ``yield`` until the
server has handed the previous chunk to the socket; a timer armed there ends the stream when that
takes ``stall_timeout`` seconds (a client that stopped reading): the pieces' generator is closed at
once (its ``finally`` removes the subscription) and the response task is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from realtime.counters import NO_VIEW, ViewCounters, counters
from realtime.encoding import GzipStream
from realtime.stream_loop import Piece

logger = logging.getLogger("realtime")

#: Generators being closed by the stall guard (a reference keeps their task alive).
_closing: set[asyncio.Task[Any]] = set()


async def send_pieces(
    pieces: AsyncIterator[Piece],
    *,
    encoder: GzipStream | None,
    stall_timeout: float,
    view: ViewCounters | None = None,
) -> AsyncIterator[bytes]:
    """The response's bytes for ``pieces``, ended when the client stalls (see the module);
    counted in ``view`` too, when given."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    view = view or counters.view(NO_VIEW)
    async with aclosing(pieces):  # type: ignore[type-var]
        async for piece, shared in pieces:
            chunk = encoder.encode(piece, shared=shared) if encoder else piece
            counters.events_sent += 1
            counters.bytes_sent += len(chunk)
            counters.bytes_raw += len(piece)
            view.events_sent += 1
            view.bytes_sent += len(chunk)
            view.bytes_raw += len(piece)
            timer = (
                loop.call_later(stall_timeout, _disconnect_stalled, task, pieces, view)
                if stall_timeout and task
                else None
            )
            try:
                yield chunk
            finally:
                if timer is not None:
                    timer.cancel()
    if encoder is not None:
        yield encoder.finish()


def _disconnect_stalled(
    task: asyncio.Task[Any], pieces: AsyncIterator[Piece], view: ViewCounters
) -> None:
    counters.stalled_disconnects += 1
    view.stalled_disconnects += 1
    logger.warning("realtime: closing a stream whose client stopped reading")
    # End the stream itself now (its finally removes the subscription): cancelling the response
    # task alone leaves the suspended generators to the garbage collector, which may be late.
    aclose = getattr(pieces, "aclose", None)
    if aclose is not None:
        closing = task.get_loop().create_task(aclose())
        _closing.add(closing)
        closing.add_done_callback(_closing.discard)
    task.cancel("realtime: the client stopped reading the stream")
