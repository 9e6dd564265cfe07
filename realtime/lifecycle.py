"""Server shutdown: end every open stream at once, so the server can exit (or reload) in seconds.

ASGI servers wait for open responses before they exit, and a stream never ends by itself; the
lifespan shutdown event comes only after that wait. So, the first time a hub is created on the
main thread's loop, this module chains itself in front of the process's SIGINT and SIGTERM
handlers (uvicorn's, gunicorn's): on the signal it closes every hub (streams end cleanly, and
the browser reconnects to the next server), then calls the handler that was there before.
Nothing is installed off the main thread, nor where no Python handler exists.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from types import FrameType
from typing import Any

_installed: set[int] = set()


def close_all_streams() -> None:
    """End every open stream of this process (thread-safe)."""
    from realtime.relay.hub import all_hubs

    for hub in all_hubs():
        loop = getattr(hub, "loop", None)
        if loop is not None and loop.is_running() and not loop.is_closed():
            loop.call_soon_threadsafe(hub.close)
        else:
            hub.close()


def install_shutdown_hook(loop: asyncio.AbstractEventLoop) -> None:
    """Chain :func:`close_all_streams` before the current SIGINT/SIGTERM handlers (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if not callable(previous) or getattr(previous, "_realtime_chained", False):
            continue
        signal.signal(sig, _chain(previous))
        _installed.add(sig)


def _chain(previous: Any) -> Any:
    def handler(signum: int, frame: FrameType | None) -> None:
        close_all_streams()
        previous(signum, frame)

    handler._realtime_chained = True  # type: ignore[attr-defined]
    return handler
