"""How many streams one client, and the whole process, may hold open.

A stream holds a socket, a subscription and some memory for as long as it is open, so one client
opening thousands would take the server from everyone else. Each stream takes a slot for its
client when its request is accepted and gives it back when it ends:

- per client (``MAX_STREAMS_PER_CLIENT``): a signed-in user is one client whatever its sessions
  and addresses; an anonymous visitor with a session is its session; one without is its address
  (``REMOTE_ADDR``, or the last address of ``CLIENT_ADDRESS_HEADER`` behind a trusted proxy);
- per process (``MAX_STREAMS``).

At a cap the new stream is refused with ``429`` and ``Retry-After`` and the streams already open
keep working: a person's open tabs are never closed by a tab they open later, and a client that
retries in a loop is answered cheaply, before anything streams. Counts are per process
(several processes each apply the caps). Slots are taken on the request's thread and given back
on the event loop, under one lock.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

from django.http import HttpRequest

from realtime.conf import get_config


class _Slots:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.per_client: Counter[str] = Counter()
        self.total = 0


_slots = _Slots()


@dataclass
class StreamSlot:
    """One open stream's place in the counts; :meth:`release` gives it back (once)."""

    client: str
    released: bool = False

    def release(self) -> None:
        with _slots.lock:
            if self.released:
                return
            self.released = True
            _slots.total -= 1
            _slots.per_client[self.client] -= 1
            if _slots.per_client[self.client] <= 0:
                del _slots.per_client[self.client]


class TooManyStreams(Exception):
    """A cap is reached; the message says which, for the client."""


def client_of(request: HttpRequest) -> str:
    """Who opens this stream, for the per-client cap (see the module docstring)."""
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return f"user:{user.pk}"
    key = getattr(getattr(request, "session", None), "session_key", None)
    if key:
        return f"session:{key}"
    header = get_config().CLIENT_ADDRESS_HEADER
    if header:
        forwarded = request.headers.get(header, "")
        address = forwarded.split(",")[-1].strip()
        if address:
            return f"address:{address}"
    return f"address:{request.META.get('REMOTE_ADDR', '')}"


def take_slot(request: HttpRequest) -> StreamSlot:
    """A slot for a new stream of ``request``'s client; raises :class:`TooManyStreams` at a cap."""
    config = get_config()
    client = client_of(request)
    with _slots.lock:
        if config.MAX_STREAMS and _slots.total >= config.MAX_STREAMS:
            raise TooManyStreams("This server holds as many live streams as it can; retry soon.")
        if config.MAX_STREAMS_PER_CLIENT and (
            _slots.per_client[client] >= config.MAX_STREAMS_PER_CLIENT
        ):
            raise TooManyStreams(
                f"Too many live pages are open ({config.MAX_STREAMS_PER_CLIENT}); "
                "close some tabs and retry."
            )
        _slots.total += 1
        _slots.per_client[client] += 1
    return StreamSlot(client)


def open_slots() -> dict[str, int]:
    """Open streams per client of this process (for operators and tests)."""
    with _slots.lock:
        return dict(_slots.per_client)
