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
import time
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from django.db import close_old_connections, connections

from realtime.counters import NO_VIEW, ViewCounters, counters

if TYPE_CHECKING:
    from realtime.relay.hub import Hub, Subscription

T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None


def pool_size() -> int:
    """The render pool's threads: as many as Django's default executor would have."""
    return min(32, (os.cpu_count() or 1) + 4)


def pool() -> ThreadPoolExecutor:
    """The render pool (created on first use): renders, and the opening of streams
    (:mod:`realtime.handler`)."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(
            max_workers=pool_size(), thread_name_prefix="realtime-render"
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
    return await loop.run_in_executor(pool(), _with_fresh_connections, fn)


@dataclass
class _Entry:
    version: int
    task: asyncio.Future[bytes]
    #: Subscriptions to wake once this render is done (see :meth:`SharedRenders.render_ahead`).
    waiters: set[Subscription] = field(default_factory=set)
    #: 1 for a render started ahead (for its first taker, so not counted as shared), else 0.
    unclaimed: int = 0


@dataclass
class _Pending:
    version: int  # the newest change waiting
    fn: Callable[[], bytes]  # renders the key (any holder's: their bytes are equal)
    view: ViewCounters | None  # whose renders count it
    waiters: set[Subscription] = field(default_factory=set)


@dataclass
class SharedRenders:
    """Renders shared by key among the streams of one event loop."""

    entries: dict[Hashable, _Entry] = field(default_factory=dict)
    holders: dict[Hashable, int] = field(default_factory=dict)
    #: Per key, subscriptions changed while a render older than the change was running.
    pending: dict[Hashable, _Pending] = field(default_factory=dict)
    #: Per key, its streams' ``on_change`` hook (see :meth:`hook`).
    hooks: dict[Hashable, RenderAhead] = field(default_factory=dict)

    def hold(self, key: Hashable) -> None:
        """A stream with this key opened: keep its renders while it lives."""
        self.holders[key] = self.holders.get(key, 0) + 1

    def release(self, key: Hashable) -> None:
        """A stream with this key closed; forget the key's render once nobody holds it."""
        left = self.holders.get(key, 0) - 1
        if left <= 0:
            self.holders.pop(key, None)
            self.entries.pop(key, None)
            self.pending.pop(key, None)
            self.hooks.pop(key, None)
        else:
            self.holders[key] = left

    async def render(
        self,
        key: Hashable | None,
        version: int,
        current: int,
        fn: Callable[[], bytes],
        *,
        view: ViewCounters | None = None,
    ) -> bytes:
        """Bytes of a render of ``key`` that started at ``version`` or later.

        ``current`` is the hub's version now: a new render is stamped with it. ``view`` counts
        the renders (and shared ones) of the stream's view.
        """
        if key is None:
            return await self._run(fn, view)
        entry = self._fresh(key, version)
        if entry is not None:
            self._claim(entry, view)
            if entry.task.done():
                return entry.task.result()
            return await asyncio.shield(entry.task)
        return await asyncio.shield(self._start(key, current, fn, view).task)

    def ready(self, key: Hashable, version: int, view: ViewCounters | None = None) -> bytes | None:
        """The bytes of a finished render of ``key`` started at ``version`` or later, or ``None``
        (then :meth:`render`). The usual case after :meth:`render_ahead`, taken without the cost
        of a coroutine, for each of thousands of streams."""
        entry = self._fresh(key, version)
        if entry is None or not entry.task.done():
            return None
        self._claim(entry, view)
        return entry.task.result()

    def _fresh(self, key: Hashable, version: int) -> _Entry | None:
        """The render of ``key`` started at ``version`` or later (running or done), unless it
        failed."""
        entry = self.entries.get(key)
        if entry is None or entry.version < version or _failed(entry.task):
            return None
        return entry

    @staticmethod
    def _claim(entry: _Entry, view: ViewCounters | None) -> None:
        """A stream takes ``entry``'s bytes: the render's first taker, or one more sharing it."""
        if entry.unclaimed:
            entry.unclaimed = 0
        else:
            counters.renders_shared += 1
            if view is not None:
                view.renders_shared += 1

    def render_ahead(
        self,
        key: Hashable,
        fn: Callable[[], bytes],
        subscriptions: Iterable[Subscription],
        version: int,
        *,
        view: ViewCounters | None = None,
    ) -> None:
        """Wake ``subscriptions`` (changed at hub ``version``) once a fresh render of ``key`` is
        done.

        What the streams' ``on_change`` hook (:meth:`hook`) calls: the hub calls it instead of
        waking the streams, so one notification to N streams starts the key's render at once and
        wakes each stream a single time, with the bytes ready, instead of waking N streams to
        wait for it. A change that arrives while an older render runs waits for it to end, then
        one new render covers every such change (coalescing).
        """
        entry = self.entries.get(key)
        if entry is None or _failed(entry.task) or (entry.task.done() and entry.version < version):
            entry = self._start(key, version, fn, view)
            entry.unclaimed = 1
        elif entry.version < version:  # an older render is running: render again after it
            pending = self.pending.setdefault(key, _Pending(version, fn, view))
            pending.version = max(pending.version, version)
            pending.waiters.update(subscriptions)
            return
        if entry.task.done():
            for subscription in subscriptions:
                subscription.mark_changed(entry.version)
        else:
            entry.waiters.update(subscriptions)

    def hook(
        self, key: Hashable, fn: Callable[[], bytes], view: ViewCounters | None = None
    ) -> RenderAhead:
        """The ``on_change`` hook of the streams holding ``key``: one per key, so the hub hands
        all of them to :meth:`render_ahead` in one call (``fn`` and ``view`` are the first
        holder's: equal keys render equal bytes)."""
        hook = self.hooks.get(key)
        if hook is None:
            hook = self.hooks[key] = RenderAhead(self, key, fn, view)
        return hook

    def _start(
        self, key: Hashable, version: int, fn: Callable[[], bytes], view: ViewCounters | None
    ) -> _Entry:
        """Start rendering ``key`` (stamped with hub ``version``); remembered while it is held."""
        task = asyncio.ensure_future(self._run(fn, view))
        entry = _Entry(version, task)
        if key in self.holders:
            self.entries[key] = entry
        task.add_done_callback(lambda _: self._rendered(key, entry))
        return entry

    def _rendered(self, key: Hashable, entry: _Entry) -> None:
        if not entry.task.cancelled():
            # Streams that shared this render may all be gone when it fails: mark the error seen.
            entry.task.exception()
        # Woken even when the render failed: each stream then renders (and retries) itself.
        for subscription in entry.waiters:
            subscription.mark_changed(entry.version)
        entry.waiters.clear()
        if key in self.pending:
            # After the streams just woken have sent their bytes: changes that arrive meanwhile
            # join the follow-up render instead of causing another.
            asyncio.get_running_loop().call_soon(self._follow_up, key, entry)

    def _follow_up(self, key: Hashable, entry: _Entry) -> None:
        pending = self.pending.get(key)
        if pending is None or self.entries.get(key) is not entry:
            return  # a newer render of the key is running: its end handles what is pending
        del self.pending[key]
        if pending.version <= entry.version and not _failed(entry.task):
            for subscription in pending.waiters:
                subscription.mark_changed(entry.version)
        else:
            follow_up = self._start(key, pending.version, pending.fn, pending.view)
            follow_up.waiters, follow_up.unclaimed = pending.waiters, 1

    @staticmethod
    async def _run(fn: Callable[[], bytes], view: ViewCounters | None) -> bytes:
        counters.renders += 1
        if view is None:
            view = counters.view(NO_VIEW)  # a render of no stream view (tests, other callers)
        view.renders += 1
        started = time.perf_counter()
        try:
            return await run_sync(fn)
        except Exception:
            counters.render_errors += 1
            view.render_errors += 1
            raise
        finally:
            view.render_seconds.observe(time.perf_counter() - started)


class RenderAhead:
    """The ``on_change`` hook of the subscriptions of one key (:meth:`SharedRenders.hook`):
    :meth:`SharedRenders.render_ahead` for that key."""

    __slots__ = ("fn", "key", "shared", "view")

    def __init__(
        self,
        shared: SharedRenders,
        key: Hashable,
        fn: Callable[[], bytes],
        view: ViewCounters | None = None,
    ) -> None:
        self.shared, self.key, self.fn, self.view = shared, key, fn, view

    def __call__(self, subscriptions: list[Subscription], version: int) -> None:
        self.shared.render_ahead(self.key, self.fn, subscriptions, version, view=self.view)


def shared_renders(hub: Hub) -> SharedRenders:
    """The shared renders of one hub (one event loop)."""
    return hub.attached(SharedRenders)


def _failed(task: asyncio.Future[bytes]) -> bool:
    return task.done() and (task.cancelled() or task.exception() is not None)
