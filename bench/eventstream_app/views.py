"""The django-eventstream peer: its SSE view for the channel ``groups``, a command, a reset.

Delivery is django-eventstream's default, in-process one (no Redis, no GRIP proxy, no event
storage): each open stream registers a listener with the library's ``ListenerManager``, and
``send_event`` queues the event on every listener of the channel and wakes it. So the peer is one
process: a second worker would never see another's events (the library's remedy for that is Redis
or Pushpin). A command renders the groups template once and sends the HTML; ``send_event``
JSON-encodes it, and ``json.dumps`` leaves ``<`` as it is (no ``\\u003c``), so every event block
on the wire holds the ``<li>`` the load generator counts.

The current state on connect. The library itself sends only ``stream-open`` on connect; its
documented way to start from a known state is event storage plus ``Last-Event-ID`` (a page
rendered with ``get_current_event_id`` resumes the stream from that id). That costs a database
write per event and a database read per stream start, which the other peers do not pay, so
storage stays off and the stream view sends the current render itself, as the first event after
``stream-open`` (the ``message`` event a command sends, encoded by the library's own
``sse_encode_event``). It does so without a gap:

- every command's render-and-send and every connect's render hold one asyncio lock, so events
  leave in the order of their renders, and none is sent while a stream is being set up;
- under that lock the view lets the library register the stream's listener (its first chunk) and
  make the check that follows it (events queued during set-up are dropped there: the library would
  re-read them from storage, which is off), and only then renders. An event sent after that render
  is queued on the listener; one sent before it is in the render.

The lock also paces commands to the event loop. In a trial without it at N=1000 (commands in
parallel, as plain sync views run), sends outran the loop, each stream's queue overflowed (the
library keeps at most 10 pending events per stream, ``MAX_PENDING``) and, without storage, the
overflow is dropped: a 100-command burst left 51.8 events per stream, and none of the 1000 streams
ever received the last state.

Each open stream also keeps a thread: Django runs a request's synchronous parts on a thread of its
own, and the library's stream calls its synchronous ``get_events`` through it (1047 threads at
N=1000).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator

from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
    StreamingHttpResponse,
)
from django.template.loader import render_to_string
from django.views.decorators.csrf import csrf_exempt
from django_eventstream import send_event
from django_eventstream.utils import sse_encode_event
from django_eventstream.views import events as eventstream_events
from django_eventstream.views import get_listener_manager

CHANNEL = "groups"
#: Held by every render-and-send and by each stream's set-up (see the module docstring).
_lock = asyncio.Lock()
#: Renders done and events sent by this process, for ``stats``.
counters = {"renders": 0, "sends": 0}


def render() -> str:
    """The groups list, as every peer renders it."""
    counters["renders"] += 1
    groups = list(Group.objects.order_by("name"))
    return render_to_string("realtime_tests/groups.html", {"groups": groups})


def _create(name: str) -> None:
    try:
        Group.objects.create(name=name)
    finally:
        connection.close()  # back to the pool now: the command may wait for the lock next


def _render_and_send() -> None:
    try:
        send_event(CHANNEL, "message", render())
        counters["sends"] += 1
    finally:
        connection.close()


def _render_and_close() -> str:
    # A stream's request lasts as long as the stream, and Django gives its database connection
    # back only at the end of the request: give it back now, or every open stream would hold one.
    try:
        return render()
    finally:
        connection.close()


@csrf_exempt
async def add_group(request: HttpRequest) -> HttpResponse:
    """The command: create a group, then render the list once and send it to every stream."""
    name = json.loads(request.body or b"{}").get("name", "group")
    # The create stays outside the lock: inside it, a 100-command burst at N=1000 took 19.0 s to
    # reach every stream instead of 7.8 s (measured; the lock's holder then waits longer on a busy
    # event loop). Its connection goes back to the pool before the command waits for the lock.
    await sync_to_async(_create)(name)
    async with _lock:
        await sync_to_async(_render_and_send)()
    return HttpResponse(status=204)


async def _next(stream: AsyncIterator[bytes]) -> bytes | None:
    return await anext(stream, None)


async def _close(pending: asyncio.Task[bytes | None] | None, stream: AsyncIterator[bytes]) -> None:
    if pending is not None and not pending.done():
        pending.cancel()
        await asyncio.wait([pending])
    if isinstance(stream, AsyncGenerator):
        await stream.aclose()  # the library's ``finally`` removes the listener


async def _current_state_first(
    opening: bytes, pending: asyncio.Task[bytes | None], stream: AsyncIterator[bytes]
) -> AsyncGenerator[bytes, None]:
    try:
        yield opening
        chunk = await pending
        while chunk is not None:
            yield chunk
            chunk = await _next(stream)
    finally:
        await _close(pending, stream)


async def events(request: HttpRequest) -> HttpResponseBase:
    """django-eventstream's SSE view for ``groups``, the current render as its first event."""
    pending: asyncio.Task[bytes | None] | None = None
    async with _lock:
        response: HttpResponseBase = await sync_to_async(eventstream_events)(
            request, channels=[CHANNEL]
        )
        if not isinstance(response, StreamingHttpResponse):
            return response  # an error, answered at once
        content = response.streaming_content
        if not isinstance(content, AsyncIterator):
            return response  # not the library's stream (it is an async generator)
        stream = aiter(content)
        try:
            # The library registers the listener, then yields padding and ``stream-open``.
            first = await anext(stream)
            # Resumed, it checks for events queued meanwhile (none: sends wait for the lock),
            # then waits for the next one; one loop step takes it there.
            pending = asyncio.create_task(_next(stream))
            await asyncio.sleep(0)
            html = await sync_to_async(_render_and_close)()
        except BaseException:
            await _close(pending, stream)
            raise
    assert pending is not None
    state = sse_encode_event("message", json.dumps(html, cls=DjangoJSONEncoder))
    response.streaming_content = _current_state_first(first + state.encode(), pending, stream)
    return response


@csrf_exempt
async def reset(request: HttpRequest) -> HttpResponse:
    """Delete every group (204); sends nothing, as the other peers' resets."""
    await sync_to_async(lambda: Group.objects.all().delete())()
    return HttpResponse(status=204)


async def stats(request: HttpRequest) -> JsonResponse:
    """Renders done and events sent (as ``notifications_received``, the key the bench reads)."""
    listeners = get_listener_manager().listeners_by_channel.get(CHANNEL, ())
    return JsonResponse(
        {
            "renders": counters["renders"],
            "notifications_received": counters["sends"],
            "sends": counters["sends"],
            "streams": len(listeners),
        }
    )
