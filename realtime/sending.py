"""Sending a stream's pieces: encoding, counting, and the stall guard.

:func:`send_pieces` turns pieces into the bytes of the response (compressed when an encoder is
given) and counts them. The response's body iterator is suspended at each ``yield`` until the
server has handed the previous chunk to the socket; when that takes ``stall_timeout`` seconds (a
client that stopped reading), the stream ends. The streams of an event loop share one timer for
this (:class:`_StallWatch`): a timer per event cost ~3 µs to arm and cancel, 30 ms of the loop's
time for each notification to 10,000 streams, for sends that almost never block. The stream then ends with one
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
from weakref import WeakKeyDictionary

from realtime.counters import NO_VIEW, ViewCounters, counters
from realtime.encoding import GzipStream
from realtime.stream_loop import Piece
from realtime.transport import abort_connection

logger = logging.getLogger("realtime")

#: Generators being closed by the stall guard (a reference keeps their task alive).
_closing: set[asyncio.Task[Any]] = set()

_Sending = tuple[float, asyncio.Task[Any], AsyncIterator[Any], Any, list[bool], ViewCounters]


class _StallWatch:
    """The sends of one event loop that are in progress, each with the loop time at which it
    counts as stalled, and one timer that ends the stalled ones.

    A send that does not block (the usual case: the server copies the chunk to its buffer) is
    added and removed without the timer firing; the timer is armed for the earliest deadline
    while any send is in progress, and re-armed after each check for the next one.
    """

    __slots__ = ("loop", "sending", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.sending: dict[AsyncIterator[Any], _Sending] = {}
        self.timer: asyncio.TimerHandle | None = None

    def begin(self, key: AsyncIterator[Any], sending: _Sending) -> None:
        self.sending[key] = sending
        if self.timer is None or sending[0] < self.timer.when():
            if self.timer is not None:
                self.timer.cancel()
            self.timer = self.loop.call_at(sending[0], self._check)

    def end(self, key: AsyncIterator[Any]) -> None:
        self.sending.pop(key, None)

    def _check(self) -> None:
        self.timer = None
        now = self.loop.time()
        stalled = [key for key, sending in self.sending.items() if sending[0] <= now]
        for key in stalled:
            _deadline, task, pieces, scope, flag, view = self.sending.pop(key)
            _disconnect_stalled(task, pieces, scope, flag, view)
        if self.sending:
            self.timer = self.loop.call_at(min(s[0] for s in self.sending.values()), self._check)


_watches: WeakKeyDictionary[asyncio.AbstractEventLoop, _StallWatch] = WeakKeyDictionary()


def _stall_watch(loop: asyncio.AbstractEventLoop) -> _StallWatch:
    watch = _watches.get(loop)
    if watch is None:
        watch = _watches[loop] = _StallWatch(loop)
    return watch


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
    watch = _stall_watch(loop) if stall_timeout and task else None
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
            if watch is not None:
                assert task is not None
                deadline = loop.time() + stall_timeout
                watch.begin(pieces, (deadline, task, pieces, scope, stalled, view))
            try:
                yield chunk
            finally:
                if watch is not None:
                    watch.end(pieces)
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
