"""The process-wide registry of hubs: one :class:`~realtime.relay.hub.Hub` per event loop.

:func:`get_hub` creates a loop's hub on first use, with the configured backend, and chains
:func:`close_all_hubs` in front of the process's shutdown signals (see :mod:`realtime.lifecycle`):
at shutdown every stream ends and every hub's listener stops (its connection to PostgreSQL is
closed while the server is still draining, not left to the process's exit).
This is the only module that holds hubs; the hub itself knows nothing of the registry.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import Counter

from realtime.lifecycle import install_shutdown_hook
from realtime.relay.base import load_backend
from realtime.relay.hub import Hub

_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()

#: Hubs being closed at shutdown (a reference keeps their task alive until it is done).
_closing: set[asyncio.Task[None]] = set()


def get_hub() -> Hub:
    """The hub of the running event loop, created (with the configured backend) on first use."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub(load_backend(), loop)
        install_shutdown_hook(close_all_hubs)
    return hub


def all_hubs() -> list[Hub]:
    """Every live hub of this process (one per event loop that has streamed and is not closed:
    a stream that started while its server stopped may have made a hub on a loop since closed)."""
    return [hub for hub in _hubs.values() if hub.loop is None or not hub.loop.is_closed()]


def close_all_hubs() -> None:
    """End every open stream of this process and stop its listeners (thread-safe: each hub
    closes on its own loop; a hub whose loop is not running only ends its streams)."""
    for hub in all_hubs():
        loop = hub.loop
        if loop is not None and loop.is_running() and not loop.is_closed():
            loop.call_soon_threadsafe(_shut_down, hub)
        else:
            hub.close()


def _shut_down(hub: Hub) -> None:
    """On the hub's loop: end every stream now, then stop the listener (``Hub.aclose``)."""
    hub.close()
    task = asyncio.ensure_future(hub.aclose())
    _closing.add(task)
    task.add_done_callback(_closing.discard)


def subscriptions_by_topic() -> dict[str, int]:
    """How many subscriptions watch each topic, over every hub of the process."""
    total: Counter[str] = Counter()
    for hub in all_hubs():
        total.update(hub.topic_counts())
    return dict(total)
