"""In-process backend for unit tests and single-process deployments.

Messages never leave the process. ``publish`` defers delivery to ``transaction.on_commit`` (the
closest in-process equivalent of NOTIFY's commit-time delivery: nothing on rollback), then hands the
message to every hub of the process through its event loop. Not for more than one process.
"""

from __future__ import annotations

import asyncio
from functools import partial

from django.db import transaction

from realtime.relay.base import Backend, Receiver


class MemoryBackend(Backend):
    """Relay within one process."""

    _hubs: dict[Receiver, asyncio.AbstractEventLoop] = {}

    @classmethod
    def publish(cls, message: str, *, using: str) -> None:
        transaction.on_commit(partial(cls._deliver, message), using=using)

    @classmethod
    def _deliver(cls, message: str) -> None:
        for hub, loop in list(cls._hubs.items()):
            if not loop.is_closed():
                loop.call_soon_threadsafe(hub.dispatch_message, message)

    async def start(self, hub: Receiver) -> None:
        self._hub = hub
        type(self)._hubs[hub] = asyncio.get_running_loop()

    async def stop(self) -> None:
        hub = getattr(self, "_hub", None)
        if hub is not None:
            type(self)._hubs.pop(hub, None)
