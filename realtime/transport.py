"""Closing a response's TCP connection at once, when the ASGI server is uvicorn.

ASGI gives an application no way to drop a connection: a response that ends before the client
has read it leaves the server flushing a buffer that a stalled client never drains, so its
socket (a file descriptor) stays open as long as the client does. :func:`abort_connection` finds
the server's connection for a request and aborts it (no flush: the buffer is dropped, the socket
closed, the client gets a reset).

This is a reach-in, kept to this module: uvicorn runs each request in an asyncio task whose
coroutine is ``RequestResponseCycle.run_asgi``, and that cycle holds the request's ``scope`` (the
very dict the application receives, which Django keeps as ``request.scope``) and its
``transport``. When the server's shape differs (another server, another uvicorn internals,
a middleware that copied the scope) nothing is found and nothing is done: the function returns
``False`` and the caller falls back to ending the response the ASGI way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

#: The qualified name of the coroutine uvicorn runs each request in (h11 and httptools alike).
_CYCLE_COROUTINE = "RequestResponseCycle.run_asgi"


def abort_connection(scope: Mapping[str, Any] | None) -> bool:
    """Abort the server's connection serving ``scope``; ``False`` when it cannot be found.

    Call on the event loop that serves the request. Costs one pass over the loop's tasks.
    """
    if scope is None:
        return False
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        if getattr(coro, "__qualname__", None) != _CYCLE_COROUTINE:
            continue
        frame = getattr(coro, "cr_frame", None)
        cycle = frame.f_locals.get("self") if frame is not None else None
        if getattr(cycle, "scope", None) is not scope:
            continue
        abort = getattr(getattr(cycle, "transport", None), "abort", None)
        if not callable(abort):
            return False
        abort()
        return True
    return False
