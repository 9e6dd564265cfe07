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
    counts as stalled, and a loop timer that ends the stalled ones.

    A send that does not block (the usual case: the server copies the chunk to its buffer) is
    added and removed before any check runs. A check is armed for the earliest deadline while
    sends are in progress; with one ``stall_timeout`` for every stream the deadlines only grow, so
    one check is pending at a time. The watch holds no reference to its loop or to a timer (one
    holds its loop): it is the value of a weak mapping keyed by that loop.
    """

    __slots__ = ("due", "sending")

    def __init__(self) -> None:
        self.sending: dict[AsyncIterator[Any], _Sending] = {}
        #: When the earliest pending check runs (None: no check pending).
        self.due: float | None = None

    def begin(
        self, loop: asyncio.AbstractEventLoop, key: AsyncIterator[Any], sending: _Sending
    ) -> None:
        self.sending[key] = sending
        if self.due is None or sending[0] < self.due:
            self._arm(loop, sending[0])

    def end(self, key: AsyncIterator[Any]) -> None:
        self.sending.pop(key, None)

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        self.due = when
        loop.call_at(when, self._check, when)

    def _check(self, armed_for: float) -> None:
        loop = asyncio.get_running_loop()
        # asyncio runs a timer up to its clock's resolution early. Read as "now" that timer's
        # own time: else a send due then is neither ended nor checked again, and with ``due``
        # left in the past no later send arms a check (the watch of the loop was dead).
        now = max(loop.time(), armed_for)
        if self.due is not None and self.due <= now:
            self.due = None  # this is (or comes after) the check armed for ``due``
        stalled = [key for key, sending in self.sending.items() if sending[0] <= now]
        for key in stalled:
            _deadline, task, pieces, scope, flag, view = self.sending.pop(key)
            _disconnect_stalled(task, pieces, scope, flag, view)
        if self.sending:
            deadline = min(sending[0] for sending in self.sending.values())
            if self.due is None or deadline < self.due:
                self._arm(loop, deadline)


_watches: WeakKeyDictionary[asyncio.AbstractEventLoop, _StallWatch] = WeakKeyDictionary()


def _stall_watch(loop: asyncio.AbstractEventLoop) -> _StallWatch:
    watch = _watches.get(loop)
    if watch is None:
        watch = _watches[loop] = _StallWatch()
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
                watch.begin(loop, pieces, (deadline, task, pieces, scope, stalled, view))
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
