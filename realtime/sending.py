"""Sending a stream's pieces: encoding, counting, and the stall guard.

:func:`send_pieces` turns pieces into the bytes of the response (compressed when an encoder is
given) and counts them. The response's body iterator is suspended at each ``yield`` until the
server has handed the previous chunk to the socket; a timer armed there ends the stream when that
takes ``stall_timeout`` seconds (a client that stopped reading). The stream then ends with one
WARNING line and no traceback: the server's connection is aborted (see
:mod:`realtime.transport`), which frees its socket at once and lets the pending write return, and
the stream stops at its next step (its ``finally`` removes the subscription). Under a server
whose connection cannot be found, the pieces' generator is closed at once and the response task
is cancelled instead (the server may then keep the socket until the client goes away).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from realtime.counters import NO_VIEW, ViewCounters, counters
from realtime.encoding import GzipStream
from realtime.stream_loop import Piece
from realtime.transport import abort_connection

logger = logging.getLogger("realtime")

#: Generators being closed by the stall guard (a reference keeps their task alive).
_closing: set[asyncio.Task[Any]] = set()


async def send_pieces(
    pieces: AsyncIterator[Piece],
    *,
    encoder: GzipStream | None,
    stall_timeout: float,
    scope: Mapping[str, Any] | None = None,
    view: ViewCounters | None = None,
) -> AsyncIterator[bytes]:
    """The response's bytes for ``pieces``, ended when the client stalls (see the module).

    ``scope`` is the request's ASGI scope, used to find (and abort) its connection on a stall;
    the bytes are counted in ``view`` too, when given.
    """
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    stalled: list[bool] = []
    view = view or counters.view(NO_VIEW)
    # try/finally rather than ``aclosing``: one object fewer for each open stream.
    try:
        async for piece, shared in pieces:
            chunk = encoder.encode(piece, shared=shared) if encoder else piece
            counters.events_sent += 1
            counters.bytes_sent += len(chunk)
            counters.bytes_raw += len(piece)
            view.events_sent += 1
            view.bytes_sent += len(chunk)
            view.bytes_raw += len(piece)
            timer = (
                loop.call_later(
                    stall_timeout, _disconnect_stalled, task, pieces, scope, stalled, view
                )
                if stall_timeout and task
                else None
            )
            try:
                yield chunk
            finally:
                if timer is not None:
                    timer.cancel()
            if stalled:
                return  # the connection is gone; closing the pieces ends the subscription
    finally:
        await pieces.aclose()  # type: ignore[attr-defined]
    if encoder is not None:
        yield encoder.finish()


def _disconnect_stalled(
    task: asyncio.Task[Any],
    pieces: AsyncIterator[Piece],
    scope: Mapping[str, Any] | None,
    stalled: list[bool],
    view: ViewCounters,
) -> None:
    counters.stalled_disconnects += 1
    view.stalled_disconnects += 1
    logger.warning("realtime: closing a stream whose client stopped reading")
    stalled.append(True)
    if abort_connection(scope):
        # The pending write returns at once (the server saw the connection end); the stream
        # stops at its next step, so nothing raises and nothing else is logged.
        return
    # End the stream itself now (its finally removes the subscription): cancelling the response
    # task alone leaves the suspended generators to the garbage collector, which may be late.
    aclose = getattr(pieces, "aclose", None)
    if aclose is not None:
        closing = task.get_loop().create_task(aclose())
        _closing.add(closing)
        closing.add_done_callback(_closing.discard)
    task.cancel("realtime: the client stopped reading the stream")
