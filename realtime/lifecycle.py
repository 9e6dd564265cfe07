"""Server shutdown: end every open stream at once, so the server can exit (or reload) in seconds.

ASGI servers wait for open responses before they exit, and a stream never ends by itself; the
lifespan shutdown event comes only after that wait. So :func:`install_shutdown_hook` chains a
callback in front of the process's SIGINT and SIGTERM handlers (uvicorn's, gunicorn's): on the
signal the callback runs (the hub registry passes one that closes every hub, so streams end
cleanly and the browser reconnects to the next server), then the handler that was there before.
Nothing is installed off the main thread, nor where no Python handler exists. This module imports
nothing of the app: what to do at shutdown is passed in.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any


def install_shutdown_hook(on_shutdown: Callable[[], None]) -> None:
    """Chain ``on_shutdown`` before the current SIGINT/SIGTERM handlers (main thread only, once)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if not callable(previous) or getattr(previous, "_realtime_chained", False):
            continue
        signal.signal(sig, _chain(previous, on_shutdown))


def _chain(previous: Any, on_shutdown: Callable[[], None]) -> Any:
    def handler(signum: int, frame: FrameType | None) -> None:
        on_shutdown()
        previous(signum, frame)

    handler._realtime_chained = True  # type: ignore[attr-defined]
    return handler
