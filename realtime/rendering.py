"""The one place where streams run synchronous Django code (ORM queries, template rendering).

Renders run on a small dedicated thread pool, so their cost is visible (``REALTIME`` has no knob
for it yet: the pool has as many threads as Django's default executor would) and each thread keeps
one database connection, refreshed per ``CONN_MAX_AGE`` like a request's.

:class:`SharedRenders` gives *render once per distinct view*: streams whose bytes would be equal
(same render key) and whose needs are met by a render started late enough (see the hub's version)
await the same render instead of starting their own.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from django.db import close_old_connections, connections

from realtime.metrics import counters

if TYPE_CHECKING:
    from realtime.relay.hub import Hub

T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(
            max_workers=min(32, (os.cpu_count() or 1) + 4), thread_name_prefix="realtime-render"
        )
    return _executor


def release_request_thread() -> None:
    """Let the request's own worker thread go while its stream stays open.

    Django's ASGI handler gives every request a context whose first synchronous call (the
    ``request_started`` receivers, a sync view) starts a thread that lives until the response
    ends: for a stream, hours of an idle OS thread per open tab. Once the stream has started,
    its synchronous work is done (renders use the render pool), so this closes that thread's
    database connections on it and lets it exit. A later synchronous call of the request (at its
    end) gets a fresh, short-lived thread. This reaches into asgiref's per-context executors; if
    their shape ever changes, it does nothing.
    """
    from asgiref.sync import SyncToAsync

    try:
        context = SyncToAsync.thread_sensitive_context.get(None)
        executors = SyncToAsync.context_to_thread_executor
    except AttributeError:  # pragma: no cover - another asgiref
        return
    executor = executors.pop(context, None) if context is not None else None
    if executor is not None:
        executor.submit(connections.close_all)
        executor.shutdown(wait=False)


def _with_fresh_connections(fn: Callable[[], T]) -> T:
    close_old_connections()
    try:
        return fn()
    finally:
        close_old_connections()


async def run_sync(fn: Callable[[], T]) -> T:
    """Run ``fn`` (ORM, templates) on the render pool and return its result."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool(), _with_fresh_connections, fn)


@dataclass
class _Entry:
    version: int
    task: asyncio.Future[bytes]
    users: int = 0


@dataclass
class SharedRenders:
    """Renders shared by key among the streams of one event loop."""

    entries: dict[Hashable, _Entry] = field(default_factory=dict)
    holders: dict[Hashable, int] = field(default_factory=dict)

    def hold(self, key: Hashable) -> None:
        """A stream with this key opened: keep its renders while it lives."""
        self.holders[key] = self.holders.get(key, 0) + 1

    def release(self, key: Hashable) -> None:
        """A stream with this key closed; forget the key's render once nobody holds it."""
        left = self.holders.get(key, 0) - 1
        if left <= 0:
            self.holders.pop(key, None)
            self.entries.pop(key, None)
        else:
            self.holders[key] = left

    async def render(
        self, key: Hashable | None, version: int, current: int, fn: Callable[[], bytes]
    ) -> bytes:
        """Bytes of a render of ``key`` that started at ``version`` or later.

        ``current`` is the hub's version now: a new render is stamped with it.
        """
        if key is None:
            return await self._run(fn)
        entry = self.entries.get(key)
        if entry is not None and entry.version >= version and not _failed(entry.task):
            counters.renders_shared += 1
            return await asyncio.shield(entry.task)
        task = asyncio.ensure_future(self._run(fn))
        # Streams that shared this render may all be gone when it fails: mark the error seen.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        if key in self.holders:
            self.entries[key] = _Entry(current, task)
        return await asyncio.shield(task)

    @staticmethod
    async def _run(fn: Callable[[], bytes]) -> bytes:
        counters.renders += 1
        try:
            return await run_sync(fn)
        except Exception:
            counters.render_errors += 1
            raise


def shared_renders(hub: Hub) -> SharedRenders:
    """The shared renders of one hub (one event loop)."""
    return hub.attached(SharedRenders)


def _failed(task: asyncio.Future[bytes]) -> bool:
    return task.done() and (task.cancelled() or task.exception() is not None)
