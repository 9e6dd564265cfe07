"""Shutdown: SIGINT/SIGTERM first end every open stream, then reach the server's own handler."""

from __future__ import annotations

import asyncio
import signal
import threading
import weakref
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest

from realtime import lifecycle
from realtime.relay import registry
from realtime.relay.hub import Hub
from tests.realtime.helpers import FakeBackend


@pytest.fixture(autouse=True)
def own_hubs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only this module's hubs exist while it runs (close_all_hubs must not end live servers'),
    and their closing tasks stay out of the process's set."""
    monkeypatch.setattr(registry, "_hubs", weakref.WeakKeyDictionary())
    monkeypatch.setattr(registry, "_closing", set())


@pytest.fixture
def handlers() -> Iterator[list[int]]:
    """Restore SIGINT/SIGTERM handlers after the test."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    calls: list[int] = []
    try:
        yield calls
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_chains_in_front_of_python_handlers(handlers: list[int]) -> None:
    def server_handler(signum: int, frame: FrameType | None) -> None:
        handlers.append(signum)

    signal.signal(signal.SIGINT, server_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # no Python handler: left alone
    loop = asyncio.new_event_loop()
    try:
        hub = Hub(FakeBackend(), loop)
        registry._hubs[loop] = hub
        lifecycle.install_shutdown_hook(registry.close_all_hubs)
        lifecycle.install_shutdown_hook(registry.close_all_hubs)  # idempotent: chained once
        chained = signal.getsignal(signal.SIGINT)
        assert chained is not server_handler
        assert getattr(chained, "_realtime_chained", False)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL

        chained(signal.SIGINT, None)  # type: ignore[operator]
        assert hub.closed  # streams end first...
        assert handlers == [signal.SIGINT]  # ...then the server hears the signal
    finally:
        loop.close()


def test_not_installed_off_the_main_thread(handlers: list[int]) -> None:
    before = signal.getsignal(signal.SIGINT)
    loop = asyncio.new_event_loop()
    try:
        worker = threading.Thread(
            target=lifecycle.install_shutdown_hook, args=(registry.close_all_hubs,)
        )
        worker.start()
        worker.join(timeout=5)
    finally:
        loop.close()
    assert signal.getsignal(signal.SIGINT) is before


def test_close_all_hubs_from_another_thread() -> None:
    # A running loop is closed through call_soon_threadsafe, on its own thread.
    ready = threading.Event()
    state: dict[str, Any] = {}

    def serve() -> None:
        async def main() -> None:
            loop = asyncio.get_running_loop()
            hub = Hub(FakeBackend(), loop)
            registry._hubs[loop] = hub
            state["hub"] = hub
            async with hub.subscribe(["a"]) as subscription:
                ready.set()
                await subscription.wait(5)
                state["closed"] = subscription.closed

        asyncio.run(main())

    thread = threading.Thread(target=serve)
    thread.start()
    assert ready.wait(5)
    registry.close_all_hubs()
    thread.join(timeout=5)
    assert state["closed"] is True
    assert state["hub"].closed


def test_close_all_hubs_closes_idle_hubs_directly() -> None:
    loop = asyncio.new_event_loop()
    hub = Hub(FakeBackend(), loop)
    registry._hubs[loop] = hub
    try:
        registry.close_all_hubs()
        assert hub.closed
    finally:
        loop.close()


def test_all_hubs_leaves_out_hubs_of_closed_loops() -> None:
    # A stream that started while its server stopped may have made a hub on a loop since closed.
    loop = asyncio.new_event_loop()
    hub = Hub(FakeBackend(), loop)
    registry._hubs[loop] = hub
    try:
        assert hub in registry.all_hubs()
        loop.close()
        assert hub not in registry.all_hubs()
    finally:
        del registry._hubs[loop]
